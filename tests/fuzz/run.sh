#!/usr/bin/env bash
# Runs the request-parser fuzzer on a fresh copy of the seed corpus.
# Usage: tests/fuzz/run.sh BUILD_DIR [RUNS]
# BUILD_DIR must be configured with: CXX=clang++ cmake -DRS_FUZZ=ON -DRS_SANITIZE=ON
# Exits non-zero on a crash, leak or mismatch; the crashing input is kept in
# BUILD_DIR/fuzz-artifacts/.
set -euo pipefail

build_dir=${1:?usage: $0 BUILD_DIR [RUNS]}
runs=${2:-200000}
here=$(cd "$(dirname "$0")" && pwd)
fuzzer="$build_dir/bin/parser_fuzz"
if [[ ! -x "$fuzzer" ]]; then
  echo "error: $fuzzer not built; configure with CXX=clang++ -DRS_FUZZ=ON -DRS_SANITIZE=ON" >&2
  exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts="$build_dir/fuzz-artifacts"
mkdir -p "$artifacts"
python3 "$here/make_corpus.py" "$work/corpus"

"$fuzzer" -runs="$runs" -max_len=4096 -dict="$here/http.dict" \
  -timeout=10 -artifact_prefix="$artifacts/" -print_final_stats=1 "$work/corpus"
