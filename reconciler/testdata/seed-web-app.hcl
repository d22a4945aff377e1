# The seed deployment guide's example policy file, as written there.
scaling "horizontal" {
  enabled = true
  min     = 2
  max     = 20

  policy {
    evaluation_interval = "10s"
    cooldown           = "30s"

    target "nomadscaler" {
      namespace     = "production"
      job           = "web-app"
      group         = "frontend"
      optimizer_url = "http://optimizer:8000"
      cache_size    = 10
    }

    check "cpu" {
      source = "nomad-apm"
      query  = "avg_cpu_percent"

      strategy "target-value" {
        target = 75
      }
    }
  }
}
