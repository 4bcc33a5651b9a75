#!/usr/bin/env bash
# Profiles ringserve-http (or nginx) under load: perf record (cpu-clock, call graphs) on the
# server pinned to CPU 0 while wrk runs on the other CPUs, then a text report of the hottest
# paths. Usage: perf/profile.sh [--bin DIR] [--label NAME] [--connections N] BACKEND WORKLOAD [SECONDS]
#   BACKEND:  uring | epoll | threads | nginx
#   WORKLOAD: plaintext | pipelined | json
#   --bin DIR: the binaries to profile (default build/bin; an older build for a before/after)
#   --label NAME: names the committed table (default: the current commit)
# Writes perf/results/profile-BACKEND-WORKLOAD.txt (and perf.data beside it; both ignored by
# git), prints the top, and writes perf/results/top20-LABEL-BACKEND-WORKLOAD.txt: the 20
# hottest symbols with the command that produced them, small enough to commit.
# No flame graph: Debian 12 packages no flame-graph renderer; `perf script -i <perf.data>` is
# the input the usual FlameGraph scripts take.
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
bin=build/bin
label=$(git rev-parse --short HEAD 2>/dev/null || echo current)
connections=256
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --label) label=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
backend=${1:?usage: perf/profile.sh BACKEND WORKLOAD [SECONDS]}
workload=${2:?usage: perf/profile.sh BACKEND WORKLOAD [SECONDS]}
seconds=${3:-5}
case "$workload" in
  plaintext) path=/plaintext depth=1 ;;
  pipelined) path=/plaintext depth=16 ;;
  json) path=/json depth=1 ;;
  *) echo "workload must be plaintext, pipelined or json" >&2; exit 2 ;;
esac
for tool in perf wrk taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/setup.sh --lab" >&2; exit 1; }
done
[[ -x "$bin/ringserve-http" ]] || { [[ "$bin" == build/bin ]] && scripts/build.sh release; }
cpus=$(nproc)
load_cpus=$([[ $cpus -gt 1 ]] && echo "1-$((cpus - 1))" || echo 0)
tmp=$(mktemp -d)
out_dir=perf/results
mkdir -p "$out_dir"
data="$out_dir/profile-$backend-$workload.data"
report="$out_dir/profile-$backend-$workload.txt"
cleanup() {
  [[ -n "${server_pid:-}" ]] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

if [[ "$backend" == nginx ]]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 - "$tmp" "$port" <<'PY'
import sys, pathlib
sys.path.insert(0, "perf")
import bench
tmp, port = sys.argv[1], int(sys.argv[2])
pathlib.Path(tmp, "nginx.conf").write_text(bench.NGINX_CONF.format(tmp=tmp, port=port, mask="1"))
PY
  taskset -c 0 nginx -c "$tmp/nginx.conf" -p "$tmp" -g 'daemon off;' &
  server_pid=$!
  sleep 0.5
  comm=nginx
else
  taskset -c 0 "$bin/ringserve-http" --backend "$backend" --port 0 >"$tmp/out" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$tmp/out" && break; sleep 0.05; done
  port=$(grep -o "port [0-9]*" "$tmp/out" | head -1 | cut -d' ' -f2)
  # The loop threads name themselves (rs-loop-N; rs-worker for the threads backend).
  comm=ringserve-http,rs-loop-0,rs-worker
fi
cat >"$tmp/pipeline.lua" <<LUA
init = function(args)
  local r = {}
  for i = 1, $depth do r[i] = wrk.format(nil, "$path") end
  req = table.concat(r)
end
request = function() return req end
LUA
# Call graphs from frame pointers would miss the -O2 frames; DWARF unwinding sees them.
perf record -e cpu-clock -F 2999 --call-graph dwarf,16384 -C 0 -o "$data" -- sleep "$seconds" \
  2>"$tmp/record.err" &
record_pid=$!
taskset -c "$load_cpus" wrk -t1 -c"$connections" -d"${seconds}s" -s "$tmp/pipeline.lua" \
  "http://127.0.0.1:$port$path" | grep -E "Requests/sec|requests in" | tee "$tmp/wrk"
wait "$record_pid"
{
  echo "# perf/profile.sh $backend $workload: cpu-clock samples on CPU 0 (the server), ${seconds}s"
  perf report -i "$data" --stdio --no-children --comms "$comm" --sort dso,symbol \
    --percent-limit 0.7 --call-graph=none 2>/dev/null | grep -v -e "^$" -e "^# *$" -e "Tip:"
  echo
  echo "# hottest call chains"
  perf report -i "$data" --stdio --no-children --comms "$comm" --percent-limit 3 \
    --call-graph=caller,0.5,5 2>/dev/null | grep -v -e "^$" -e "^# *$" -e "Tip:" | head -200
} >"$report"
top20="$out_dir/top20-$label-$backend-$workload.txt"
{
  echo "# perf/profile.sh ${args[*]}"
  echo "# $(nproc) CPUs, kernel $(uname -r); server on CPU 0, wrk -c$connections depth $depth on CPUs $load_cpus"
  sed 's/^/# wrk: /' "$tmp/wrk"
  echo "# share of the server CPU's cpu-clock samples, by symbol (kernel and user space)"
  perf report -i "$data" --stdio --no-children --comms "$comm" --sort symbol \
    --call-graph=none 2>/dev/null | grep -v -e "^#" -e "^$" |
    sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' | head -20
} >"$top20"
head -45 "$report"
echo "full report: $report (samples: $data); top 20: $top20"
