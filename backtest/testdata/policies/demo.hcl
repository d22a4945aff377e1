# The policy make bench-live gives bench-a/web: only what a user would
# write for the demo (its rate query, capacity per replica and the demo's
# 10-minute day). For `backtest --policy` replays of synthetic:demo.
scaling {
  min = 1
  max = 12
  policy {
    check "requests" {
      source = "prometheus"
      query  = "sum(rate(demo_requests_total[10s]))"
    }
    target "nomadscaler" {
      capacity_per_replica = 10
      seasonality          = ["10m"]
    }
  }
}
