#!/usr/bin/env bash
# Installs what is missing, builds, and starts the echo server on port 9000.
# Extra arguments go to the server: scripts/run.sh --port 9001 --threads 2
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
exec build/bin/ringserve-echo --port 9000 "$@"
