#!/usr/bin/env python3
"""HTTPS beside nginx: the perf lab's HTTPS part on its own (perf/bench.py --full --https-only,
described there and in docs/performance.md). Runs it, then prints the report's HTTPS table and
the report's path.

    python3 perf/tls_bench.py [--bin build/bin] [--seconds 5] [--rounds 3] [--out DIR]
"""
import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", type=Path, default=HERE.parent / "build" / "bin")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every load")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="where the report goes")
    args = parser.parse_args()
    report = subprocess.run(
        [sys.executable, str(HERE / "bench.py"), "--full", "--https-only", "--seconds",
         str(args.seconds), "--rounds", str(args.rounds), "--bin", str(args.bin), "--out",
         str(args.out)], stdout=subprocess.PIPE, text=True, check=True).stdout.strip()
    section = Path(report).read_text().partition("\n## HTTPS\n")[2].partition("\n## ")[0]
    print(f"## HTTPS\n{section.rstrip()}\n\n{report}")


if __name__ == "__main__":
    main()
