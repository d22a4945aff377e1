#!/usr/bin/env bash
# Builds HashiCorp's nomad-autoscaler v0.4.7 from the Go module proxy into
# $1/nomad-autoscaler, the way install-nomad.sh builds Nomad: the module is
# downloaded, copied to a writable directory and built with -mod=mod. Its
# go.mod needs no replace or pin (it requires nomad/api, not nomad, and that
# resolves from the proxy). `make bench-live` runs it next to nomadscalerd;
# nothing of it is committed here. A second run does nothing.
set -euo pipefail
out=${1:?usage: install-nomad-autoscaler.sh DIR}
version=v0.4.7
mod=github.com/hashicorp/nomad-autoscaler
if [ -x "$out/nomad-autoscaler" ] && "$out/nomad-autoscaler" version 2>/dev/null | grep -qx "Nomad Autoscaler ${version}"; then
  echo "nomad-autoscaler: cached in $out"; exit 0
fi
mkdir -p "$out"
export GOFLAGS=-mod=mod
src=$(go mod download -json "${mod}@${version}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
work=$(mktemp -d); trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src" "$work/nomad-autoscaler"; chmod -R u+w "$work/nomad-autoscaler"
# Without GitDescribe the binary calls itself v0.4.7-dev; the release build
# sets it from the tag.
(cd "$work/nomad-autoscaler" && go build -trimpath -ldflags "-X ${mod}/version.GitDescribe=${version}" -o "$out/nomad-autoscaler" .)
"$out/nomad-autoscaler" version
