#!/usr/bin/env bash
# The perf lab (perf/bench.py; docs/performance.md, "The lab"): ringserve-http on uring, epoll
# and threads against nginx (plaintext, json, delayed answers, static files hot and cold, the
# access log on, memory per idle connection, connection churn), ringserve-echo on the three
# models, the floors, HTTPS beside nginx and the ring knobs, with the server pinned to CPU 0 and
# the load on the other CPUs, in rounds (each workload on every server back to back, the order
# rotating), medians and ranges in the report, failed runs marked and left out.
# Usage: scripts/bench.sh [--full | --all] [--rounds N] [--seconds N] [--threads 1,2,4]
#                         [--https-only] [--out DIR] [--compare OLD.json [NEW.json]]
# Quick by default (one round of 1 s runs, about a minute); --full runs the whole matrix in 3
# rounds within 30 minutes (it prints the time it plans first); --all adds the latency-vs-load
# curves. --compare OLD.json alone, or with NEW.json, runs nothing (no setup, no build) and
# prints every cell's ratios against OLD (of NEW, or of the newest report); with a mode flag it
# compares the run it makes. Writes perf/results/<date>-<host>.md, .json and PNG charts, and
# prints the report's path.
set -euo pipefail
cd "$(dirname "$0")/.."
compare_only=0
if [[ " $* " == *" --compare "* ]]; then
  compare_only=1
  for arg in "$@"; do
    case "$arg" in
      --full | --all | --https-only | --curves | --seconds* | --rounds* | --threads*) compare_only=0 ;;
    esac
  done
fi
if [[ $compare_only == 0 ]]; then
  scripts/setup.sh --lab
  scripts/build.sh release
fi
exec python3 perf/bench.py "$@"
