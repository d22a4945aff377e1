# nomadscalerd.nomad.hcl for a single machine: raw_exec instead of exec, a
# binary path and ports given as variables, loopback only, one replica by
# default (several need http_port = 0: a static port cannot be shared on one
# node). The end-to-end test in
# deploy/ runs it on a Nomad dev agent; it also suits trying the service
# job locally:
#
#   nomad var put nomad/jobs/nomadscalerd nomad_token=unused api_token=secret
#   nomad job run -var binary=$PWD/bin/nomadscalerd -var nomad_addr=$NOMAD_ADDR \
#     deploy/nomad/nomadscalerd-raw_exec.nomad.hcl

variable "binary" {
  type        = string
  description = "Absolute path of the nomadscalerd binary."
}

variable "http_port" {
  type        = number
  default     = 8000
  description = "Loopback port of the HTTP API and /metrics; 0 lets Nomad pick one per replica."
}

variable "count" {
  type    = number
  default = 1
}

variable "nomad_addr" {
  type        = string
  default     = "http://127.0.0.1:4646"
  description = "The Nomad agent nomadscalerd talks to."
}

variable "prometheus_addr" {
  type    = string
  default = ""
}

variable "ha" {
  type        = bool
  default     = true
  description = "Compete for the leader lock, as the replicas of the service job do."
}

job "nomadscalerd" {
  datacenters = ["*"]
  type        = "service"

  group "nomadscalerd" {
    count = var.count

    ephemeral_disk {
      size    = 200
      sticky  = true
      migrate = true
    }

    network {
      port "http" {
        static = var.http_port
      }
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "2s"
      mode     = "fail"
    }

    service {
      name     = "nomadscalerd"
      provider = "nomad"
      port     = "http"
      address  = "127.0.0.1"

      check {
        name     = "health"
        type     = "http"
        path     = "/health"
        interval = "2s"
        timeout  = "2s"
      }
    }

    task "nomadscalerd" {
      driver = "raw_exec"

      config {
        command = var.binary
        args = concat(
          ["--db", "${NOMAD_ALLOC_DIR}/data/nomadscalerd.db", "run", "--http-addr", "127.0.0.1:${NOMAD_PORT_http}"],
          var.ha ? ["--ha"] : [],
        )
      }

      env {
        NOMAD_ADDR           = var.nomad_addr
        NOMADSCALERD_NODE_ID = "${node.unique.id}"
        PROMETHEUS_ADDR      = var.prometheus_addr
        # A soft limit for Go's heap under memory_max (256): near it the
        # collector runs more often instead of the task being OOM-killed.
        # The heap is about half of the RSS; the rest is the binary and
        # bbolt's pages mapped from the file.
        GOMEMLIMIT = "192MiB"
      }

      template {
        destination = "secrets/tokens.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/nomadscalerd" -}}
          NOMAD_TOKEN={{ .nomad_token }}
          NOMADSCALERD_TOKEN={{ .api_token }}
          {{- end }}
        EOT
      }

      resources {
        cpu        = 200
        memory     = 128
        memory_max = 256
      }

      kill_timeout = "20s"

      logs {
        max_files     = 2
        max_file_size = 10
      }
    }
  }
}
