# nomadscalerd on Nomad itself: two replicas with --ha, so one leads (holds
# the Nomad variable lock nomadscalerd/leader) and scales while the other
# keeps recording history and takes over within the lock TTL.
#
# Before the first run, store the tokens in the job's own Nomad variable
# (tasks of a job may read nomad/jobs/<job> with their workload identity):
#
#   nomad var put nomad/jobs/nomadscalerd \
#     nomad_token=<ACL token: see the policy below> api_token=$(uuidgen)
#
# The Nomad token needs this ACL policy (the end-to-end test of --shards
# runs two replicas with a token of exactly this policy, read from here):
#
#   namespace "*" {
#     policy       = "read"   # jobs, allocations, the event stream
#     capabilities = ["scale-job", "read-job-scaling", "list-scaling-policies", "read-scaling-policy"]
#     variables {
#       path "nomadscalerd/leader" { capabilities = ["read", "write"] }   # --ha lock
#       path "nomadscalerd/*" { capabilities = ["list", "read", "write", "destroy"] }   # --shards: shard locks, replica heartbeats
#     }
#   }
#   node { policy = "read" }   # the event stream's node events; "write" with node pools (drains idle nodes)
#
# With --shards, the replicas see each other through their heartbeat
# variables (nomadscalerd/heartbeat/<replica>, and the shards each holds in
# nomadscalerd/held/<replica>), which this policy lists and reads, so no
# management token is needed for shards to spread (Nomad
# shows variable locks to management tokens only).
#
#   nomad job run -var binary=/usr/local/bin/nomadscalerd deploy/nomad/nomadscalerd.nomad.hcl

variable "binary" {
  type        = string
  default     = "/usr/local/bin/nomadscalerd"
  description = "nomadscalerd on every client that may run it (linked against libhighs; see the README)."
}

variable "http_port" {
  type        = number
  default     = 8000
  description = "Port of the HTTP API and /metrics on the client's address."
}

variable "prometheus_addr" {
  type        = string
  default     = ""
  description = "Prometheus for checks with source = \"prometheus\", e.g. http://prometheus.service.consul:9090; empty: none."
}

job "nomadscalerd" {
  datacenters = ["*"]
  type        = "service"
  priority    = 80 # placed before the workloads it scales

  group "nomadscalerd" {
    count = 2

    # One replica per client, so losing a node loses at most one of them.
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    # The bbolt database (history, plans, journal) lives in the allocation's
    # data directory. sticky + migrate keep it across updates and
    # reschedules, also to another node; losing it costs history, not
    # correctness (the model waits for 30 model steps of fresh data). The
    # two replicas never share a file: bbolt takes an exclusive lock.
    # Sized for 1,000 series (a policy's checks are one series each) at
    # the default retention: a day of raw points at 1.94 bytes a point
    # (make bench-store) is 168 MB, 30 days of rollups at 11.4 bytes a
    # minute 492 MB; the file does not shrink, so room for its free pages.
    ephemeral_disk {
      size    = 2048
      sticky  = true
      migrate = true
    }

    network {
      port "http" {
        static = var.http_port
      }
    }

    # Replace one replica at a time: the other keeps leading.
    update {
      max_parallel     = 1
      min_healthy_time = "10s"
      healthy_deadline = "3m"
      auto_revert      = true
    }

    restart {
      attempts = 10
      interval = "10m"
      delay    = "5s"
      mode     = "delay"
    }

    service {
      name     = "nomadscalerd"
      provider = "nomad"
      port     = "http"
      tags     = ["http"]

      # 200 while the database and Nomad answer, 503 otherwise. No
      # check_restart: a restart cannot bring Nomad back, and followers are
      # healthy too (the body says "role").
      check {
        name     = "health"
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "3s"
      }
    }

    # The same port serves /metrics without the API token; this service is
    # what a Prometheus nomad_sd_configs job selects.
    service {
      name     = "nomadscalerd-metrics"
      provider = "nomad"
      port     = "http"
      tags     = ["metrics"]
      meta {
        metrics_path = "/metrics"
      }
    }

    task "nomadscalerd" {
      driver = "exec"

      config {
        command = var.binary
        args = [
          "--db", "${NOMAD_ALLOC_DIR}/data/nomadscalerd.db",
          "--log-format", "json",
          "run",
          "--ha",
          "--http-addr", "${NOMAD_ADDR_http}",
        ]
      }

      env {
        # The local agent; it must listen on the client's address, not
        # only on loopback (bind_addr).
        NOMAD_ADDR           = "http://${attr.unique.network.ip-address}:4646"
        NOMADSCALERD_NODE_ID = "${node.unique.id}" # never drain the node this replica runs on
        PROMETHEUS_ADDR      = var.prometheus_addr
        # A soft limit for Go's heap under the reservation (memory, the
        # hard limit where memory oversubscription is off): near it the
        # collector runs more often instead of the task being OOM-killed.
        # The heap is about half of the RSS; the rest is the binary and
        # bbolt's pages mapped from the file (page cache, reclaimable).
        GOMEMLIMIT = "256MiB"
      }

      # Tokens from the job's Nomad variable, as environment variables, so
      # they appear in no job spec and no process list. A changed token
      # restarts the task.
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

      # Sized for 1,000 policies. Measured with make bench-scale (1,000
      # policies with 1 s sampling and a day of history, see the README's
      # "Scale"): 0.094 core (about 250 MHz of a 2.6 GHz core) and peak
      # RSS 158 MiB at steady state, of which about 60-80 MiB anonymous
      # memory; the 1,000 first fits after a start take a minute of a
      # core and peaked at 227 MiB. On the `make run` demo (2 policies):
      # RSS 38 MiB, under 1% of a core. A few policies need a fifth of
      # this; memory_max lets a start's burst of fits borrow where memory
      # oversubscription is on.
      resources {
        cpu        = 500
        memory     = 320
        memory_max = 512
      }

      kill_timeout = "20s" # stops the HTTP server, hands over the lock, closes bbolt

      logs {
        max_files     = 5
        max_file_size = 20
      }
    }
  }
}
