#!/usr/bin/env bash
# Installs moto 5.1.1 (the AWS API emulator the AWS provider's tests run
# against, as `python3 -m moto.server`). Debian 12 does not package it, and
# the Python package index is out of reach; trixie's architecture-independent
# python3-moto and python3-antlr4 install on Debian 12 next to its own
# python3 libraries. The two .debs are pinned by version and checksum and kept
# in $1 so a reinstall needs no network.
set -euo pipefail
cachedir=${1:?usage: install-moto.sh CACHE_DIR}
# package version sha256, from trixie's Packages index.
debs=(
  "python3-moto 5.1.1-4 8a231ec9c330cd2cf40fde0d0ebe1d3c10698cfba718cee8a2ad7e983c4e7574"
  "python3-antlr4 4.9.2-1 58368e8bca494a5f55bc3b5c1ef9f85c01e99e75061f7d8429d28691b7d28717"
)
# Debian 12's own packages moto imports; flask-cors is not among the .deb's
# dependencies, but its server does import it.
bookworm=(python3-boto3 python3-botocore python3-flask python3-flask-cors python3-werkzeug python3-jinja2
          python3-requests python3-responses python3-xmltodict python3-dateutil python3-cryptography)

installed() { [ "$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null)" = "install ok installed $2" ]; }
all_installed=1
for d in "${debs[@]}"; do read -r name version _ <<<"$d"; installed "$name" "$version" || all_installed=0; done
for p in "${bookworm[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || all_installed=0; done
if [ $all_installed -eq 1 ]; then
  echo "moto: installed"; exit 0
fi

SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
bash "$(dirname "$0")/install-apt.sh" "${bookworm[@]}"

mkdir -p "$cachedir"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fetched=0
files=()
for d in "${debs[@]}"; do
  read -r name version sha <<<"$d"
  file="$cachedir/${name}_${version}_all.deb"
  if [ ! -f "$file" ] || ! echo "$sha  $file" | sha256sum -c --status; then
    if [ $fetched -eq 0 ]; then
      # A private apt configuration: the machine's own sources stay untouched.
      mkdir -p "$work/apt/lists/partial" "$work/apt/sources.list.d"
      echo "deb http://deb.debian.org/debian trixie main" > "$work/apt/sources.list"
      aptopts=(-o Dir::Etc::sourcelist="$work/apt/sources.list" -o Dir::Etc::sourceparts="$work/apt/sources.list.d"
               -o Dir::State::Lists="$work/apt/lists" -o APT::Get::List-Cleanup=0)
      apt-get "${aptopts[@]}" update -qq 2>"$work/apt-update.log" || { cat "$work/apt-update.log" >&2; exit 1; }
      fetched=1
    fi
    (cd "$work" && apt-get "${aptopts[@]}" download "$name=$version" >"$work/apt-download.log" 2>&1) || {
      cat "$work/apt-download.log" >&2
      echo "moto: $name $version did not download (has trixie moved on? update the pins in $0)" >&2; exit 1; }
    cp "$work/${name}_${version}_all.deb" "$file"
  fi
  echo "$sha  $file" | sha256sum -c --status || { echo "moto: checksum mismatch for $file" >&2; rm -f "$file"; exit 1; }
  files+=("$file")
done
$SUDO dpkg -i "${files[@]}" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; exit 1; }
# Debian's interpreter by path: a pyenv or virtualenv python3 on PATH does
# not see Debian's packages.
/usr/bin/python3 -c 'import moto.server' || { echo "moto: installed but /usr/bin/python3 cannot import moto.server" >&2; exit 1; }
echo "moto: installed 5.1.1"
