#!/usr/bin/env bash
# Installs what ringserve needs from Debian packages. Idempotent and quiet when everything is
# present; says what it installs otherwise. `--lab` adds the benchmark tools. media-types gives
# /etc/mime.types, which ringserve-http reads for the Content-Type of static files.
set -euo pipefail

packages=(
  cmake make g++ pkg-config python3
  liburing-dev libmimalloc-dev libfmt-dev libcli11-dev libgtest-dev libssl-dev libsystemd-dev openssl
  clang libclang-rt-14-dev clang-format clang-tidy
  curl netcat-openbsd wrk media-types
  python3-prometheus-client
)
if [[ "${1:-}" == "--lab" ]]; then
  packages+=(nginx-light gnuplot-nox linux-perf strace libbenchmark-dev libhttp-parser-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
