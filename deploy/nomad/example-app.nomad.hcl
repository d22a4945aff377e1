# An application scaled by nomadscalerd: the `target "nomadscaler"` block
# marks the policy as nomadscalerd's. The scaling block is disabled and the
# target enabled, so that nomad-autoscaler, if it runs in this namespace,
# skips the policy (see the README, "Sharing a namespace with
# nomad-autoscaler"); remove its own policy from a group you hand over.
#
# The plan follows the forecast of the `requests` check: replicas are
# chosen so that capacity_per_replica * replicas covers the forecast,
# trading replica cost against the penalty for unserved requests. The
# other four checks are the seed service's exogenous variables: nomadscalerd
# samples and stores them with the requests (`nomadscalerd history`
# exports them); the daemon's forecast does not use them as regressors yet.
#
# The Prometheus metric names below are this example's; use your
# application's.

variable "image" {
  type    = string
  default = "registry.example.com/shop/web:1.4.2"
}

job "shop" {
  datacenters = ["*"]
  type        = "service"

  group "web" {
    count = 3

    network {
      port "http" {
        to = 8080
      }
    }

    # Nomad refuses to scale a group during its deployment; nomadscalerd
    # retries with backoff and does not count that as an action.
    update {
      max_parallel     = 2
      min_healthy_time = "10s"
      healthy_deadline = "3m"
    }

    scaling {
      # Disabled for every other autoscaler: nomad-autoscaler (v0.4.7)
      # skips disabled policies, and would crash on an enabled one whose
      # target it has no plugin for. nomadscalerd follows the target's
      # own `enabled` below.
      enabled = false
      min     = 2
      max     = 40

      policy {
        # Reconcile at least this often; job, allocation and deployment
        # events from Nomad's event stream trigger a reconcile at once.
        evaluation_interval = "10s"
        cooldown            = "1m"

        check "requests" {
          source = "prometheus"
          query  = "sum(rate(http_requests_total{job=\"shop-web\"}[1m]))"
        }

        check "avg_response_time" {
          source = "prometheus"
          query  = "sum(rate(http_request_duration_seconds_sum{job=\"shop-web\"}[1m])) / sum(rate(http_request_duration_seconds_count{job=\"shop-web\"}[1m]))"
        }

        check "authentication_awaiting_users" {
          source = "prometheus"
          query  = "sum(auth_pending_sessions{job=\"shop-auth\"})"
        }

        check "queue_waiting" {
          source = "prometheus"
          query  = "sum(queue_messages_ready{queue=\"orders\"})"
        }

        check "avg_processing_time" {
          source = "prometheus"
          query  = "avg(order_processing_seconds{quantile=\"0.5\"})"
        }

        target "nomadscaler" {
          enabled              = true
          requests_check       = "requests"
          capacity_per_replica = 50  # requests/s one replica serves
          replica_cost         = 1.0 # per replica-second
          penalty              = 1.0 # per unserved request/s per second
          startup_cost         = 0.5
          shutdown_cost        = 0.3
          max_scale_up         = 4   # per second of the plan
          max_scale_down       = 2
          startup_delay        = "30s"
          cache_size           = 10
          forecast_horizon     = 120
          model_step           = "10s"
          # Without seasonality the model is fitted on the latest hour
          # (a longer window is warned about and not read).
          history_window       = "1h"
          refit_interval       = "10m"
          stale_after          = "30s"
          forecast_margin      = 1
          # A daily seasonality needs history_window, and the daemon's
          # raw_retention (24h by default), longer than a day plus 30
          # model steps: at 2h of history `seasonality = ["24h"]` would
          # never be fitted (the daemon warns when a policy sets one).

          # A known recurring peak: the model sees an indicator while it runs.
          event "newsletter" {
            cron     = "0 9 * * 1"
            duration = "1h"
          }
        }
      }
    }

    task "web" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http"]
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }

    service {
      name     = "shop-web"
      provider = "nomad"
      port     = "http"

      check {
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }
  }
}
