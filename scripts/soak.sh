#!/usr/bin/env bash
# A soak: mixed traffic on each backend in turn (uring, epoll, threads), SECONDS in all, split
# evenly (60 by default), with every answer checked and the server's RSS, descriptors and pools
# watched; one line of figures per backend, exit 1 with what went wrong. perf/soak.py has the
# details. Needs a release build (scripts/build.sh release) unless --bin names another server.
# Usage: scripts/soak.sh [SECONDS] [--bin PATH] [--backends uring,epoll] [-- SERVER FLAGS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=60
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
exec python3 perf/soak.py --seconds "$seconds" "$@"
