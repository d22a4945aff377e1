#!/usr/bin/env bash
# `make run`: a local Nomad dev agent plus nomadscalerd on its default
# database, in the foreground until Ctrl-C.
set -euo pipefail
nomad_bin=${NOMADSCALERD_NOMAD_BIN:?set by the Makefile}
bin=${1:-bin/nomadscalerd}
dir=${RUN_DIR:-.cache/run}
mkdir -p "$dir"
cat > "$dir/nomad-dev.hcl" <<'HCL'
bind_addr = "127.0.0.1"
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
pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap cleanup INT TERM EXIT
"$nomad_bin" agent -dev -config "$dir/nomad-dev.hcl" > "$dir/nomad.log" 2>&1 &
pids+=($!)
export NOMAD_ADDR=http://127.0.0.1:4646
for i in $(seq 1 120); do
  if "$nomad_bin" node status 2>/dev/null | grep -q ready; then break; fi
  sleep 0.5
done
"$nomad_bin" node status | grep -q ready || { echo "nomad dev agent did not become ready; see $dir/nomad.log"; exit 1; }
echo "nomad dev agent ready at $NOMAD_ADDR (log: $dir/nomad.log)"
shift || true
"$bin" run "$@" &
pids+=($!)
sleep 1
echo
echo "nomadscalerd: http://127.0.0.1:8000/health  metrics: http://127.0.0.1:8000/metrics"
echo "Ctrl-C to stop"
wait -n "${pids[@]}"
