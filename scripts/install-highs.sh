#!/usr/bin/env bash
# Builds HiGHS 1.10.0 (shared library) from Debian's source tarball into $1.
# Debian 12 does not package HiGHS; trixie's source does, and lanl/highs v1.0.0
# works with 1.10 but not 1.12+, so the version is pinned and checksummed.
set -euo pipefail
prefix=${1:?usage: install-highs.sh PREFIX}
want_sha=5964fc1ca4f0b23dd45987bbed1838f2e570e96aa624635ac63d277152b6c94a
tarball=highs_1.10.0+ds.orig.tar.xz
if [ -f "$prefix/lib/pkgconfig/highs.pc" ]; then
  echo "highs: cached in $prefix"; exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
need=()
for p in cmake g++ pkg-config xz-utils dpkg-dev; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}"; fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/sources.list.d"
echo "deb-src http://deb.debian.org/debian trixie main" > "$work/apt/sources.list"
# A private apt configuration: the machine's own sources stay untouched.
aptopts=(-o Dir::Etc::sourcelist="$work/apt/sources.list" -o Dir::Etc::sourceparts="$work/apt/sources.list.d"
         -o Dir::State::Lists="$work/apt/lists" -o APT::Get::List-Cleanup=0)
cache_tar="$(dirname "$prefix")/$tarball"
if [ ! -f "$cache_tar" ] || ! echo "$want_sha  $cache_tar" | sha256sum -c --status; then
  apt-get "${aptopts[@]}" update -qq 2>"$work/apt-update.log" || { cat "$work/apt-update.log" >&2; exit 1; }
  # The .dsc and debian.tar.xz may 404 on this mirror; only the upstream
  # tarball is needed, so apt's complaints go to a log.
  (cd "$work" && apt-get "${aptopts[@]}" source --download-only highs >"$work/apt-source.log" 2>&1) || true
  [ -f "$work/$tarball" ] || { cat "$work/apt-source.log" >&2; echo "highs: $tarball did not download" >&2; exit 1; }
  mkdir -p "$(dirname "$cache_tar")"; cp "$work/$tarball" "$cache_tar"
fi
echo "$want_sha  $cache_tar" | sha256sum -c - || { echo "highs: checksum mismatch for $cache_tar" >&2; rm -f "$cache_tar"; exit 1; }
echo "highs: building 1.10.0 (a few minutes on 2 cores)"
tar -C "$work" -xf "$cache_tar"
src=$(find "$work" -maxdepth 1 -type d -iname 'highs*' | head -1)
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_TESTING=OFF -DFAST_BUILD=ON >/dev/null
cmake --build "$work/build" -j"$(nproc)" >/dev/null
cmake --install "$work/build" >/dev/null
test -f "$prefix/lib/pkgconfig/highs.pc"
echo "highs: installed into $prefix"
