#!/usr/bin/env bash
# `make bench-live`: nomadscalerd and HashiCorp's nomad-autoscaler v0.4.7
# side by side on the `make run` demo workload, live. Not part of make test.
#
# Under .cache/bench-live it starts
#   1. one Nomad dev agent with raw_exec enabled (as run-dev.sh does),
#   2. Prometheus scraping both load generators every second,
#   3. two copies of the demo job, identical but for their scaling:
#        bench-a (in the Nomad namespace bench-a): its group "web" has a
#          `target "nomadscaler"` policy with
#          only what a user would write (the requests check, capacity 10 per
#          replica, a 10m seasonality, min 1, max 12; evaluation_interval and
#          cooldown left at their defaults);
#        bench-b (in the Nomad namespace bench-b): its group "web" has a
#          nomad-autoscaler policy, target-value with target 10 on
#            sum(rate(demo_requests_total{job="bench-b"}[10s]))
#              / clamp_min(max(demo_group_running{job="bench-b",group="web"}), 1)
#          i.e. requests/s per RUNNING replica. target-value computes
#          ceil(count * value / target) with count = Nomad's running count of
#          the group (its nomad target reads TaskGroups.web.Running), so the
#          new count is ceil(demand / 10), the same capacity model as A.
#          demo_group_running is the load generator's own poll of Nomad's
#          job scale status (every second); clamp_min keeps the query
#          finite at 0 running (then count is 0 and target-value uses the
#          value itself, still demand / 10). evaluation_interval 10s,
#          cooldown 30s (BENCH_LIVE_PEER_COOLDOWN), min 1, max 12. The
#          cooldown is the longest nomadscalerd's unwritten cooldown is (its
#          replicas' come-back time, at most 30s), not nomad-autoscaler's
#          default (5m): at 5m the peer scales four times in 20 minutes and
#          drops over a third of the demand, which says nothing about either
#          design.
#      Each job has its own load generator (`nomadscalerd demo load`, the
#      demo's day pattern --period 10m --low 15 --high 75 --noise 0.08 on its
#      own port) with one --seed, so both offer the same load each 100 ms.
#   4. nomadscalerd (--prometheus-addr, its own database here) and
#      nomad-autoscaler (its agent config here, namespace bench-b).
#
# Keeping the two apart: nomad-autoscaler v0.4.7 crashes (nil pointer) on a
# policy whose check has no `strategy` block, i.e. on bench-a's, and its
# file policy source crashes the same way on any policy (policy/file never
# stores the policy it hands out), so a policy_dir is no way out. Instead
# bench-b runs in its own namespace and nomad-autoscaler is given
# `nomad { namespace = "bench-b" }`: its Nomad policy source then lists that
# namespace only and never sees bench-a. nomadscalerd lists every namespace
# and takes only `target "nomadscaler"` policies, so it skips bench-b's.
#
# nomadscalerd's model needs 30 model steps of history (5 minutes at the
# default 10 s step) before its first plan; until then its reactive floor
# scales bench-a from the recorded demand.
#
# After BENCH_LIVE_DURATION (default 20m: two compressed days; e.g. 3m for a
# smoke run) `nomadscalerd demo compare` prints one row per autoscaler for
# the whole run and one after the first 120 s (unmet requests,
# replica-seconds, actions, flaps, ramps met on time), also written to
# compare.txt in the run directory. Ctrl-C, TERM or the end of the run stop
# both jobs and every process this script started.
#
# Ports and paths move with BENCH_LIVE_DIR, BENCH_LIVE_NOMAD_PORT (and the
# two ports above it for RPC and serf), BENCH_LIVE_PROMETHEUS_PORT,
# BENCH_LIVE_LOAD_PORT (A; B uses the next one), BENCH_LIVE_HTTP_PORT
# (nomadscalerd), BENCH_LIVE_AUTOSCALER_PORT and BENCH_LIVE_SEED.
set -euo pipefail
nomad_bin=${NOMADSCALERD_NOMAD_BIN:?set by the Makefile}
as_bin=${NOMAD_AUTOSCALER_BIN:?set by the Makefile}
bin=$(realpath "${1:-bin/nomadscalerd}") # raw_exec needs an absolute path
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$(realpath -m "${BENCH_LIVE_DIR:-$root/.cache/bench-live}")
nomad_port=${BENCH_LIVE_NOMAD_PORT:-4746}
prom_port=${BENCH_LIVE_PROMETHEUS_PORT:-9191}
load_a=${BENCH_LIVE_LOAD_PORT:-9311}
load_b=$((load_a + 1))
http_port=${BENCH_LIVE_HTTP_PORT:-8010}
as_port=${BENCH_LIVE_AUTOSCALER_PORT:-8090}
seed=${BENCH_LIVE_SEED:-20250101}
duration=${BENCH_LIVE_DURATION:-20m}
peer_cooldown=${BENCH_LIVE_PEER_COOLDOWN:-30s}
export NOMAD_ADDR=http://127.0.0.1:$nomad_port

case $duration in
  *h) secs=$((${duration%h} * 3600)) ;;
  *m) secs=$((${duration%m} * 60)) ;;
  *s) secs=${duration%s} ;;
  *) secs=$duration ;;
esac
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -gt 0 ] || { echo "BENCH_LIVE_DURATION=$duration: want e.g. 20m, 180s or 1h" >&2; exit 2; }

# http_ok HOST PORT PATH: true when GET answers 200 (plain bash, as in run-dev.sh).
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

command -v prometheus >/dev/null 2>&1 || bash "$root/scripts/install-apt.sh" prometheus

rm -rf "$dir"
mkdir -p "$dir/prometheus" "$dir/autoscaler/plugins"

# Daemons first in cleanup, so neither reacts to the jobs going away.
nomad_pid="" prom_pid="" nsd_pid="" as_pid=""
jobs_started=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for p in $nsd_pid $as_pid; do kill -TERM "$p" 2>/dev/null || true; done
  # raw_exec tasks outlive a stopped client agent by design, so the jobs
  # are stopped through the agent before it goes.
  for j in "${jobs_started[@]}"; do timeout 20 "$nomad_bin" job stop -detach -namespace "$j" "$j" >/dev/null 2>&1 || true; done
  for j in "${jobs_started[@]}"; do
    for _ in $(seq 1 40); do
      "$nomad_bin" operator api "/v1/job/$j/allocations?namespace=$j" 2>/dev/null | grep -q '"ClientStatus":"running"' || break
      sleep 0.5
    done
  done
  for p in $prom_pid $nomad_pid; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cat > "$dir/nomad-dev.hcl" <<HCL
bind_addr = "127.0.0.1"
ports {
  http = $nomad_port
  rpc  = $((nomad_port + 1))
  serf = $((nomad_port + 2))
}
client {
  options = { "fingerprint.denylist" = "env_aws,env_gce,env_azure,env_digitalocean" }
}
plugin "raw_exec" {
  config { enabled = true }
}
HCL
setsid "$nomad_bin" agent -dev -config "$dir/nomad-dev.hcl" > "$dir/nomad.log" 2>&1 &
nomad_pid=$!
node_ready() { "$nomad_bin" node status 2>/dev/null | grep -q ready; }
wait_for "nomad dev agent" 60 node_ready
echo "nomad dev agent:  $NOMAD_ADDR (log: $dir/nomad.log)"

cat > "$dir/prometheus/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: bench-a
    static_configs:
      - targets: ["127.0.0.1:$load_a"]
  - job_name: bench-b
    static_configs:
      - targets: ["127.0.0.1:$load_b"]
  - job_name: nomadscalerd
    static_configs:
      - targets: ["127.0.0.1:$http_port"]
YAML
prometheus --config.file="$dir/prometheus/prometheus.yml" --storage.tsdb.path="$dir/prometheus/data" \
  --web.listen-address="127.0.0.1:$prom_port" > "$dir/prometheus.log" 2>&1 &
prom_pid=$!
wait_for prometheus 30 http_ok 127.0.0.1 "$prom_port" /-/ready
echo "prometheus:       http://127.0.0.1:$prom_port (log: $dir/prometheus.log)"

# job_hcl NAME LOAD_PORT SCALING: the demo job (deploy/nomad/demo.nomad.hcl)
# in the namespace NAME with the given scaling block in its web group;
# everything else is the same for both copies.
job_hcl() {
  cat <<HCL
job "$1" {
  namespace   = "$1"
  datacenters = ["*"]
  type        = "service"

  group "load" {
    ephemeral_disk {
      size = 10
    }
    task "load" {
      driver = "raw_exec"
      config {
        command = "$bin"
        args = [
          "demo", "load",
          "--listen", "127.0.0.1:$2",
          "--pattern", "day", "--period", "10m",
          "--low", "15", "--high", "75", "--noise", "0.08", "--seed", "$seed",
          "--nomad-addr", "$NOMAD_ADDR", "--nomad-namespace", "$1", "--nomad-job", "$1", "--nomad-group", "web",
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

  group "web" {
    count = 1
    ephemeral_disk {
      size = 10
    }
    update {
      min_healthy_time  = "1s"
      healthy_deadline  = "1m"
      progress_deadline = "2m"
    }
$3
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
HCL
}

job_hcl bench-a "$load_a" '
    scaling {
      enabled = true
      min     = 1
      max     = 12
      policy {
        check "requests" {
          source = "prometheus"
          query  = "sum(rate(demo_requests_total{job=\"bench-a\"}[10s]))"
        }
        target "nomadscaler" {
          capacity_per_replica = 10
          seasonality          = ["10m"]
        }
      }
    }' > "$dir/bench-a.nomad.hcl"
job_hcl bench-b "$load_b" '
    scaling {
      enabled = true
      min     = 1
      max     = 12
      policy {
        evaluation_interval = "10s"
        cooldown            = "'"$peer_cooldown"'"
        check "requests_per_replica" {
          source = "prometheus"
          query  = "sum(rate(demo_requests_total{job=\"bench-b\"}[10s])) / clamp_min(max(demo_group_running{job=\"bench-b\",group=\"web\"}), 1)"
          strategy "target-value" {
            target = 10
          }
        }
      }
    }' > "$dir/bench-b.nomad.hcl"

cat > "$dir/autoscaler/agent.hcl" <<HCL
log_level  = "info"
plugin_dir = "$dir/autoscaler/plugins"

http {
  bind_address = "127.0.0.1"
  bind_port    = $as_port
}

nomad {
  address   = "$NOMAD_ADDR"
  namespace = "bench-b"
}

apm "prometheus" {
  driver = "prometheus"
  config = {
    address = "http://127.0.0.1:$prom_port"
  }
}

HCL

for j in bench-a bench-b; do
  "$nomad_bin" namespace apply -description "make bench-live" "$j" > /dev/null
  "$nomad_bin" job run -detach "$dir/$j.nomad.hcl" > "$dir/job-run-$j.log" 2>&1 || { cat "$dir/job-run-$j.log" >&2; exit 1; }
  jobs_started+=("$j")
done
wait_for "bench-a load generator" 60 http_ok 127.0.0.1 "$load_a" /metrics
wait_for "bench-b load generator" 60 http_ok 127.0.0.1 "$load_b" /metrics
echo "jobs:             bench-a (nomadscalerd), bench-b (nomad-autoscaler); load on :$load_a and :$load_b, seed $seed"
# Both autoscalers start on the same 15 s of Prometheus history, so the
# 10 s rate windows are full from their first query (a rate over a series
# younger than its window reads low) and the measurement starts clean.
sleep 15

"$bin" --db "$dir/nomadscalerd.db" run --nomad-addr "$NOMAD_ADDR" --http-addr "127.0.0.1:$http_port" \
  --prometheus-addr "http://127.0.0.1:$prom_port" > "$dir/nomadscalerd.log" 2>&1 &
nsd_pid=$!
"$as_bin" agent -config "$dir/autoscaler/agent.hcl" > "$dir/nomad-autoscaler.log" 2>&1 &
as_pid=$!
wait_for nomadscalerd 30 http_ok 127.0.0.1 "$http_port" /health
wait_for nomad-autoscaler 30 http_ok 127.0.0.1 "$as_port" /v1/health
start=$(date +%s)
echo "nomadscalerd:     http://127.0.0.1:$http_port (log: $dir/nomadscalerd.log)"
echo "nomad-autoscaler: http://127.0.0.1:$as_port (log: $dir/nomad-autoscaler.log)"
echo
echo "running for $duration ($secs s) from $(date -d "@$start" +%T); Ctrl-C to stop early"

# group_counts PORT: "desired/running" of a web group, as its load
# generator exports them from Nomad's job scale status.
group_counts() {
  local line d="" r=""
  { exec 4<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&4
  while IFS= read -r -t 5 line <&4; do
    case $line in
      demo_group_desired*) d=${line##* } ;;
      demo_group_running*) r=${line##* } ;;
    esac
  done
  exec 4<&- 4>&-
  [ -n "$d" ] && [ -n "$r" ] && echo "$d/$r"
  return 0
}
declare -A last=()
while [ $(($(date +%s) - start)) -lt "$secs" ]; do
  for p in $nomad_pid $prom_pid $nsd_pid $as_pid; do
    if ! kill -0 "$p" 2>/dev/null; then
      echo "a bench process ($p) exited; see the logs in $dir" >&2
      exit 1
    fi
  done
  for j in bench-a bench-b; do
    port=$load_a; [ "$j" = bench-b ] && port=$load_b
    c=$(group_counts "$port")
    if [ -n "$c" ] && [ "$c" != "${last[$j]:-}" ]; then
      printf '%s  +%4ss  %s/web desired/running: %s\n' "$(date +%T)" "$(($(date +%s) - start))" "$j" "$c"
      last[$j]=$c
    fi
  done
  sleep 2
done
end=$(date +%s)
echo
"$bin" demo compare --prometheus-addr "http://127.0.0.1:$prom_port" --nomad-addr "$NOMAD_ADDR" \
  --start "$start" --end "$end" nomadscalerd=bench-a/bench-a nomad-autoscaler=bench-b/bench-b | tee "$dir/compare.txt"
