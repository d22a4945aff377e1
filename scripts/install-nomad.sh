#!/usr/bin/env bash
# Builds the Nomad v1.10.0 binary from the Go module proxy into $1/nomad.
# The module zip omits nomad's ./api directory (a replace target), so it is
# supplied from the api module version known to build with it.
set -euo pipefail
out=${1:?usage: install-nomad.sh DIR}
version=v1.10.0
apiver=v0.0.0-20250930071859-eaa0fe0e27af
if [ -x "$out/nomad" ] && "$out/nomad" version 2>/dev/null | grep -q "Nomad ${version}"; then
  echo "nomad: cached in $out"; exit 0
fi
mkdir -p "$out"
export GOFLAGS=-mod=mod
src=$(go mod download -json "github.com/hashicorp/nomad@${version}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
api=$(go mod download -json "github.com/hashicorp/nomad/api@${apiver}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
work=$(mktemp -d); trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src" "$work/nomad"; chmod -R u+w "$work/nomad"
rm -rf "$work/nomad/api"; cp -r "$api" "$work/nomad/api"; chmod -R u+w "$work/nomad/api"
(cd "$work/nomad" && go build -trimpath -o "$out/nomad" .)
"$out/nomad" version
