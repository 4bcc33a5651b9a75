#!/usr/bin/env bash
# The perf lab: ringserve-http on uring, epoll and threads against nginx, and ringserve-echo on
# the three models, with the server pinned to CPU 0 and the load on the other CPUs; and HTTPS
# beside nginx (same certificate, TLS 1.3 and cipher): kept connections at depth 1 and 16, and a
# full handshake per request with X25519 and with P-256 key exchange.
# Usage: scripts/bench.sh [--full] [--seconds N] [--out DIR] [--https-only]
# Quick by default (well under a minute); --full runs the whole matrix (several minutes).
# Writes perf/results/<date>-<host>.md, .json and PNG charts, and prints the report's path.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --lab
scripts/build.sh release
exec python3 perf/bench.py "$@"
