#!/usr/bin/env bash
# Runs the request-parser fuzzer on a fresh copy of the seed corpus, then the TLS glue's fuzzer
# (a tenth of the runs: each may make a handshake) on a few seeds, then the PROXY header parser's.
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

tls_fuzzer="$build_dir/bin/tls_fuzz"
if [[ -x "$tls_fuzzer" ]]; then
  mkdir -p "$work/tls"
  printf '\x01' >"$work/tls/hello"
  printf '\x21\x05\x16\x10\x03' >"$work/tls/hello-altered"
  printf '\x00\x16\x03\x01\x00\x05hello' >"$work/tls/short-record"
  printf '\x00GET / HTTP/1.1\r\n\r\n' >"$work/tls/plain-http"
  "$tls_fuzzer" -runs="$((runs / 10))" -max_len=2048 -timeout=10 \
    -artifact_prefix="$artifacts/tls-" -print_final_stats=1 "$work/tls"
fi

proxy_fuzzer="$build_dir/bin/proxy_fuzz"
if [[ -x "$proxy_fuzzer" ]]; then
  mkdir -p "$work/proxy"
  printf 'PROXY TCP4 192.0.2.1 198.51.100.7 51234 443\r\nGET /' >"$work/proxy/v1-tcp4"
  printf 'PROXY TCP6 2001:db8::1 ::1 1 2\r\n' >"$work/proxy/v1-tcp6"
  printf 'PROXY UNKNOWN\r\n' >"$work/proxy/v1-unknown"
  printf '\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x07\xc8\x22\x01\xbb' \
    >"$work/proxy/v2-tcp4"
  printf '\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00' >"$work/proxy/v2-local"
  "$proxy_fuzzer" -runs="$runs" -max_len=1024 -timeout=10 \
    -artifact_prefix="$artifacts/proxy-" -print_final_stats=1 "$work/proxy"
fi
