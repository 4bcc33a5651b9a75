#!/usr/bin/env bash
# Installs what is missing, builds, and starts the HTTP server (port 8080 unless the arguments say
# otherwise). Extra arguments go to the server: scripts/run.sh --port 8081 --backend epoll --threads 2
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/bin/ringserve-http "$@"
