#!/usr/bin/env bash
# `make run`: a local demo of nomadscalerd, in the foreground until Ctrl-C.
# Under .cache/run it starts
#   1. a Nomad dev agent with raw_exec enabled,
#   2. Prometheus (Debian's package, installed if missing) on a loopback port,
#      scraping the demo load generator and nomadscalerd every second,
#   3. the demo job (deploy/nomad/demo.nomad.hcl): a load generator whose
#      request rate follows a day compressed into $RUN_DAY, and a group
#      "web" with a `target "nomadscaler"` policy over that rate,
#   4. nomadscalerd, reading the rate from Prometheus,
# then prints where to look. Ctrl-C (or TERM) stops the demo job and every
# process this script started.
#
# Ports and paths can be moved with RUN_DIR, RUN_NOMAD_PORT,
# RUN_PROMETHEUS_PORT, RUN_LOAD_PORT, RUN_HTTP_PORT and RUN_DAY.
set -euo pipefail
nomad_bin=${NOMADSCALERD_NOMAD_BIN:?set by the Makefile}
bin=$(realpath "${1:-bin/nomadscalerd}") # raw_exec needs an absolute path
shift || true
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(realpath -m "${RUN_DIR:-$root/.cache/run}")
nomad_port=${RUN_NOMAD_PORT:-4646}
prom_port=${RUN_PROMETHEUS_PORT:-9190} # not 9090: Debian's own prometheus service may hold it
load_port=${RUN_LOAD_PORT:-9300}
http_port=${RUN_HTTP_PORT:-8000}
day=${RUN_DAY:-10m}
export NOMAD_ADDR=http://127.0.0.1:$nomad_port

# http_ok HOST PORT PATH: true when GET answers 200. Plain bash, so a fresh
# machine needs no curl.
http_ok() {
  local line
  { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
  IFS= read -r -t 5 line <&3 || true
  exec 3<&- 3>&-
  [[ $line == *" 200 "* ]]
}

# wait_for WHAT SECONDS COMMAND...: poll COMMAND every half second.
wait_for() {
  local what=$1 secs=$2
  shift 2
  for _ in $(seq 1 $((secs * 2))); do
    if "$@"; then return 0; fi
    sleep 0.5
  done
  echo "$what did not come up within ${secs}s; logs are in $dir" >&2
  return 1
}

if ! command -v prometheus >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing Debian's prometheus package (apt-get)"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# A fresh database each run: the dev agent starts empty, and a stored event
# index from an earlier agent would be ahead of the new one's.
rm -rf "$dir/prometheus" "$dir/nomadscalerd.db"
mkdir -p "$dir/prometheus"

pids=()
job_started=false
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  # nomadscalerd first, so it does not react to the job going away.
  if [ "${#pids[@]}" -gt 3 ]; then kill -TERM "${pids[3]}" 2>/dev/null || true; fi
  # raw_exec tasks outlive a stopped client agent by design (it reattaches
  # to them on restart), so the job is stopped before the agent.
  if $job_started; then
    timeout 20 "$nomad_bin" job stop demo >/dev/null 2>&1 || true
    for _ in $(seq 1 40); do
      "$nomad_bin" operator api /v1/job/demo/allocations 2>/dev/null | grep -q '"ClientStatus":"running"' || break
      sleep 0.5
    done
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
# Background children of a non-interactive shell ignore SIGINT, so Ctrl-C
# reaches them only through this trap.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat > "$dir/nomad-dev.hcl" <<HCL
bind_addr = "127.0.0.1"
ports {
  http = $nomad_port
}
client {
  options = { "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean" }
}
plugin "raw_exec" {
  config { enabled = true }
}
telemetry {
  publish_allocation_metrics = true
  publish_node_metrics       = true
  collection_interval        = "1s"
}
HCL
# Its own session, so a terminal's Ctrl-C does not stop the agent before
# cleanup has stopped the demo job through it.
setsid "$nomad_bin" agent -dev -config "$dir/nomad-dev.hcl" > "$dir/nomad.log" 2>&1 &
pids+=($!)
node_ready() { "$nomad_bin" node status 2>/dev/null | grep -q ready; }
wait_for "nomad dev agent" 60 node_ready
echo "nomad dev agent:  $NOMAD_ADDR (log: $dir/nomad.log)"

cat > "$dir/prometheus/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ["127.0.0.1:$load_port"]
  - job_name: nomadscalerd
    static_configs:
      - targets: ["127.0.0.1:$http_port"]
YAML
prometheus --config.file="$dir/prometheus/prometheus.yml" --storage.tsdb.path="$dir/prometheus/data" \
  --web.listen-address="127.0.0.1:$prom_port" > "$dir/prometheus.log" 2>&1 &
pids+=($!)
wait_for prometheus 30 http_ok 127.0.0.1 "$prom_port" /-/ready
echo "prometheus:       http://127.0.0.1:$prom_port (log: $dir/prometheus.log)"

"$nomad_bin" job run -detach -var "nomadscalerd_bin=$bin" -var "load_port=$load_port" -var "day=$day" \
  "$root/deploy/nomad/demo.nomad.hcl" > "$dir/job-run.log" 2>&1 || { cat "$dir/job-run.log" >&2; exit 1; }
job_started=true
wait_for "demo load generator" 60 http_ok 127.0.0.1 "$load_port" /metrics
echo "demo job:         load follows a day compressed into $day at http://127.0.0.1:$load_port/metrics"

"$bin" --db "$dir/nomadscalerd.db" run --nomad-addr "$NOMAD_ADDR" --http-addr "127.0.0.1:$http_port" \
  --prometheus-addr "http://127.0.0.1:$prom_port" "$@" > "$dir/nomadscalerd.log" 2>&1 &
pids+=($!)
wait_for nomadscalerd 30 http_ok 127.0.0.1 "$http_port" /health
started=$(date +%s)

cat <<EOF

nomadscalerd is running (log: $dir/nomadscalerd.log). It needs about a
minute of history (30 model steps of 2s) before its first plan; then the
group demo/web follows the forecast rate at 10 requests/s per replica.

Where to look:
  export NOMAD_ADDR=$NOMAD_ADDR
  $nomad_bin job scaling-events -verbose demo
  $nomad_bin job status demo
  curl -s http://127.0.0.1:$http_port/v1/status      # policies, plans, last decisions
  curl -s http://127.0.0.1:$http_port/metrics        # nomadscaler_*, optimizer_*
  http://127.0.0.1:$prom_port/graph?g0.expr=sum(rate(demo_requests_total%5B10s%5D))
EOF
echo "  $bin status --addr http://127.0.0.1:$http_port   # the same as a table"
echo "  NOMADSCALERD_ADDR=http://127.0.0.1:$http_port $bin --db $dir/nomadscalerd.db history ls   # recorded series (read through the daemon)"
echo "  NOMADSCALERD_ADDR=http://127.0.0.1:$http_port $bin --db $dir/nomadscalerd.db model ls     # stored model fits"
echo
echo "Ctrl-C to stop"
echo

# Report every change of the group's count as it happens.
last=""
while true; do
  for p in "${pids[@]}"; do
    if ! kill -0 "$p" 2>/dev/null; then
      echo "a demo process ($p) exited; see the logs in $dir" >&2
      exit 1
    fi
  done
  count=$("$nomad_bin" operator api /v1/job/demo/scale 2>/dev/null | grep -o '"web":{"Desired":[0-9]*' | grep -o '[0-9]*$' || true)
  if [ -n "$count" ] && [ "$count" != "$last" ]; then
    printf '%s  +%3ss  demo/web desired count: %s\n' "$(date +%T)" "$(($(date +%s) - started))" "$count"
    last=$count
  fi
  sleep 2
done
