#!/usr/bin/env bash
# The whole test command: install what is missing, build, run every suite in a normal build and
# under AddressSanitizer + UndefinedBehaviorSanitizer, soak the release build for a minute, fuzz
# the HTTP parser, check formatting.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step setup
# --lab: the perf lab's quick mode is one of the suites (wrk, nginx, perf, gnuplot).
scripts/setup.sh --lab

step "include rules and format check"
scripts/lint.sh --format-only

step "release build"
scripts/build.sh release
step "release tests"
ctest --test-dir build --output-on-failure -j 2 --timeout 300
step "sanitizer build (address, undefined)"
scripts/build.sh asan
step "sanitizer tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j 2 --timeout 600

if [[ -x tests/fuzz/run.sh ]]; then
  step "fuzzers: the HTTP parser and the TLS glue (clang, libFuzzer, address + undefined)"
  scripts/build.sh fuzz
  tests/fuzz/run.sh build-fuzz 100000
fi

# Last, so that a soak failure does not hide the results above (the release build is still in
# build/).
step "soak: 60 s of mixed traffic on each backend, every answer checked (perf/soak.py)"
scripts/soak.sh 60

step "all suites passed"
