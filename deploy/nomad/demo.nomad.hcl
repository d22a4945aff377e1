# The `make run` demo (scripts/run-dev.sh submits it): a load generator whose
# request rate follows a day compressed into var.day, and a group that
# nomadscalerd scales from that rate. Both run on raw_exec, so the dev agent
# needs the raw_exec plugin enabled and the binary path must be absolute.
#
#   nomad job run -var nomadscalerd_bin=$PWD/bin/nomadscalerd deploy/nomad/demo.nomad.hcl

variable "nomadscalerd_bin" {
  type        = string
  description = "Absolute path of the nomadscalerd binary; its hidden `demo load` command is the load generator."
}

variable "load_port" {
  type        = number
  default     = 9300
  description = "Loopback port where the load generator serves demo_requests_total; Prometheus scrapes it."
}

variable "day" {
  type        = string
  default     = "10m"
  description = "Length of the compressed day: night trough, afternoon peak, one burst at 70% of it."
}

job "demo" {
  datacenters = ["*"]
  type        = "service"

  group "load" {
    count = 1

    ephemeral_disk {
      size = 10
    }

    task "load" {
      driver = "raw_exec"

      config {
        command = var.nomadscalerd_bin
        args = [
          "demo", "load",
          "--listen", "127.0.0.1:${var.load_port}",
          "--pattern", "day", "--period", var.day,
          "--low", "15", "--high", "75", "--noise", "0.08",
        ]
      }

      resources {
        cpu    = 50
        memory = 64
      }

      logs {
        max_files     = 1
        max_file_size = 1
      }
    }
  }

  # The scaled group only sleeps: what matters is its count, which follows
  # the forecast request rate at 10 requests/s per replica.
  group "web" {
    count = 1

    ephemeral_disk {
      size = 10
    }

    # Nomad refuses to scale a group while its deployment is running; the
    # sleepers are healthy at once, so a short min_healthy_time lets each
    # scaling deployment finish in seconds.
    update {
      min_healthy_time  = "1s"
      healthy_deadline  = "1m"
      progress_deadline = "2m"
    }

    scaling {
      # Disabled for every other autoscaler: nomad-autoscaler (v0.4.7)
      # skips disabled policies, and would crash on an enabled one whose
      # target it has no plugin for. nomadscalerd follows the target's
      # own `enabled` below.
      enabled = false
      min     = 1
      max     = 12

      policy {
        # Short settings so that the demo moves within two minutes: the
        # model needs 30 steps of history before its first plan, 60 s at a
        # 2 s step.
        evaluation_interval = "2s"
        cooldown            = "6s"

        check "requests" {
          source = "prometheus"
          query  = "sum(rate(demo_requests_total[10s]))"
        }

        target "nomadscaler" {
          enabled              = true
          capacity_per_replica = 10
          model_step           = "2s"
          history_window       = "5m"
          refit_interval       = "1m"
          stale_after          = "15s"
          cache_size           = 10
          forecast_horizon     = 60
          max_scale_up         = 3
          max_scale_down       = 2
        }
      }
    }

    task "web" {
      driver = "raw_exec"

      config {
        command = "/bin/sleep"
        args    = ["infinity"]
      }

      resources {
        cpu    = 20
        memory = 16
      }

      logs {
        max_files     = 1
        max_file_size = 1
      }
    }
  }
}
