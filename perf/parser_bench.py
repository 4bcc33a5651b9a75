#!/usr/bin/env python3
"""RequestParser next to http-parser: medians of 5 repetitions of perf/parser_bench, the ratio
per case, and whether each whole-request case meets the target (RequestParser at least 4.5x
faster than http-parser, issue 11).

Usage: perf/parser_bench.py [BIN_DIR] [--repetitions N] [--min-time S]
Pin it to a core for steadier numbers: taskset -c 1 perf/parser_bench.py
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

TARGET = 4.5


def main():
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin", nargs="?", type=Path, default=root / "build" / "bin")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.2)
    args = parser.parse_args()
    out = subprocess.run(
        [str(args.bin / "parser_bench"), f"--benchmark_repetitions={args.repetitions}",
         "--benchmark_report_aggregates_only=true", f"--benchmark_min_time={args.min_time}",
         # Repetitions of every case interleaved in random order: drift hits both parsers alike.
         "--benchmark_enable_random_interleaving=true",
         "--benchmark_format=json"], capture_output=True, text=True, check=True).stdout
    medians = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            medians[b["run_name"]] = (b["cpu_time"], b.get("bytes_per_second", 0))
    print(f"{'case':24} {'RequestParser ns':>16} {'http-parser ns':>15} {'speed-up':>9} "
          f"{'RequestParser MB/s':>19}  target {TARGET}x")
    missed = 0
    order = ["wrk", "techempower", "browser", "api", "chunked_post"]
    names = {n.split("/", 1)[1] for n in medians}
    for name in sorted(names, key=lambda n: (order.index(n.split("/")[0])
                                             if n.split("/")[0] in order else len(order),
                                             n.endswith("/split"), n)):
        ours, theirs = medians.get("RequestParser/" + name), medians.get("http_parser/" + name)
        if not ours or not theirs:
            continue
        speedup = theirs[0] / ours[0]
        whole = name.endswith("/whole")
        verdict = ("met" if speedup >= TARGET else "missed") if whole else "(split)"
        missed += whole and speedup < TARGET
        print(f"{name:24} {ours[0]:16.0f} {theirs[0]:15.0f} {speedup:8.2f}x "
              f"{ours[1] / 1e6:19.0f}  {verdict}")
    print(f"{missed} whole-request case(s) below the {TARGET}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
