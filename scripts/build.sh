#!/usr/bin/env bash
# Configures and builds one flavour. Usage: scripts/build.sh [release|asan|fuzz]
# release -> build/, asan -> build-asan/, fuzz -> build-fuzz/ (clang, libFuzzer)
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
jobs=$(nproc)
targets=()
case "$flavour" in
  release) dir=build; args=() ;;
  asan) dir=build-asan; args=(-DRS_SANITIZE=ON) ;;
  # Only the fuzz targets: clang builds the parser and the TLS glue with coverage instrumentation.
  fuzz) dir=build-fuzz; args=(-DRS_SANITIZE=ON -DRS_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++)
    targets=(--target parser_fuzz tls_fuzz proxy_fuzz) ;;
  *) echo "usage: $0 [release|asan|fuzz]" >&2; exit 2 ;;
esac
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$dir" "${args[@]}" >/dev/null
fi
# Warnings are errors, so a successful build has nothing worth showing.
if ! cmake --build "$dir" -j "$jobs" "${targets[@]}" >"$dir/build.log" 2>&1; then
  cat "$dir/build.log"
  exit 1
fi
