# nomadscalerd --config deploy/nomad/nomadscalerd.hcl
#
# Every flag of `nomadscalerd run` (and the global --db, --log-level,
# --log-format) is a key here with dashes as underscores; a flag or its
# environment variable overrides the file. Secrets (nomad_token, token) are
# better passed in the environment: NOMAD_TOKEN, NOMADSCALERD_TOKEN.

db         = "/var/lib/nomadscalerd/nomadscalerd.db"
log_format = "json"

nomad_addr      = "http://127.0.0.1:4646"
http_addr       = "127.0.0.1:8000"
prometheus_addr = "http://127.0.0.1:9090"

ha          = true
ha_lock_ttl = "21s"

sample_interval  = "1s"
raw_retention    = "24h"
rollup_retention = "720h"

cache_size       = 10
forecast_horizon = 60

pool_interval = "10s"

# One node pool: the Nomad clients of node pool "web". nomadscalerd keeps
# room for 10 more 500 MHz / 256 MiB allocations on them, launches nodes
# through the provider commands when the room or a blocked evaluation asks
# for it, and drains nodes idle for 5 minutes, at most 10% of the pool at a
# time, never below min.
pool "web" {
  node_pool = "web"
  min       = 2
  max       = 20

  headroom {
    cpu_mhz    = 500
    memory_mib = 256
    units      = 10
  }

  idle {
    cpu_below    = 0.40
    memory_below = 0.40
    periods      = 5
    period       = "1m"
  }

  scale_down_max_fraction = 0.10

  drain {
    deadline           = "15m"
    ignore_system_jobs = false
  }

  # The cheapest mix of these is launched (a MIP over price and size).
  instance_type "m5.large" {
    cpu_mhz    = 4000
    memory_mib = 7680
    price      = 0.096
    spot_price = 0.035
  }

  instance_type "m5.xlarge" {
    cpu_mhz    = 8000
    memory_mib = 15616
    price      = 0.192
    max        = 8
  }

  spot_max_share  = 0.5
  scale_out_grace = "10m"

  # Commands that launch and terminate nodes; see the README for their
  # arguments. provider "noop" {} only logs what it would do.
  provider "command" {
    scale_out = "/usr/local/libexec/nomadscalerd/scale-out"
    terminate = "/usr/local/libexec/nomadscalerd/terminate"
    timeout   = "2m"
  }
}
