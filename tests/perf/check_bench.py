#!/usr/bin/env python3
"""Runs the perf lab in quick mode and checks that its report is complete: every cell of every
run holds a number (latency excepted where wrk cannot measure it: pipelined runs), every run
was error-free, and the server's own request count agrees with the client's. It does not
judge the numbers: this machine is shared and noisy, so speed lives in the report, not here.

Usage: check_bench.py BIN_DIR"""
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NUMBERS = ["rps", "cpu_us", "cpu_user_us", "cpu_sys_us", "syscalls_per_req", "requests",
           "server_requests"]


def main():
    bin_dir = sys.argv[1]
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run([sys.executable, str(ROOT / "perf" / "bench.py"), "--bin", bin_dir,
                              "--out", out], capture_output=True, text=True, timeout=300)
        sys.stderr.write(run.stderr)
        if run.returncode != 0:
            sys.exit(f"bench.py failed ({run.returncode})")
        reports = list(Path(out).glob("*.json"))
        md = list(Path(out).glob("*.md"))
        pngs = list(Path(out).glob("*.png"))
        if len(reports) != 1 or len(md) != 1:
            sys.exit(f"expected one report, found {reports} {md}")
        data = json.loads(reports[0].read_text())
        rows = data["rows"]
        problems = []
        servers = {r["server"] for r in rows}
        for expected in ("uring", "epoll", "threads", "nginx"):
            if expected not in servers:
                problems.append(f"no run of {expected}")
        if not any(r["workload"].startswith("echo") for r in rows):
            problems.append("no echo runs")
        for expected in ("uring", "nginx"):  # the HTTPS part: a handshake load at least
            if not any(r["workload"].startswith("https") and r["server"] == expected
                       for r in rows):
                problems.append(f"no https run of {expected}")
        for r in rows:
            name = f"{r['workload']} / {r['server']}"
            keys = NUMBERS + ([] if r.get("latency_note") else ["p50_us", "p99_us"])
            for key in keys:
                v = r.get(key)
                if not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
                    problems.append(f"{name}: {key} is {v!r}")
            if r.get("errors"):
                problems.append(f"{name}: {r['errors']} errors")
            if r.get("count") != "ok":
                problems.append(f"{name}: count {r.get('count')}")
        knobs = data["meta"].get("knobs", {})
        knob_runs = [r for r in rows if r["server"] in knobs]
        if not knob_runs:
            problems.append("no ring knob runs")
        text = md[0].read_text()
        main_table = text.partition("\n\n## ")[0]
        table = [l for l in main_table.splitlines() if l.startswith("| ") and "---" not in l]
        if len(table) != len(rows) - len(knob_runs) + 1:
            problems.append(f"the table has {len(table) - 1} rows for "
                            f"{len(rows) - len(knob_runs)} runs")
        knob_section = text.partition("## Ring knobs")[2].partition("\n## ")[0]
        knob_table = [l for l in knob_section.splitlines()
                      if l.startswith("| ") and "---" not in l]
        plan = data["meta"].get("knob_plan", {})
        rounds = data["meta"].get("knob_rounds", 1)
        knob_lines = {(w, label) for label, ws in plan.items() for w in ws}
        for workload, label in sorted(knob_lines):
            got = sum(1 for r in knob_runs if r["workload"] == workload and r["server"] == label)
            planned = rounds * (2 if label == "uring knob baseline" else 1)
            if got != planned:
                problems.append(f"knob {label} on {workload}: {got} runs, {planned} planned")
        if not knob_lines or len(knob_table) != len(knob_lines) + 1 or " - |" in knob_section:
            problems.append(f"the ring knob table is incomplete: {knob_section!r}")
        if len(pngs) < 3:
            problems.append(f"expected 3 charts, found {len(pngs)}")
        if problems:
            print(md[0].read_text())
            sys.exit("\n".join(problems))
        print(f"{len(rows)} runs, every cell filled")


if __name__ == "__main__":
    main()
