#!/usr/bin/env python3
"""Runs the perf lab in quick mode and checks that its report is complete: every workload the
quick mode must run is there on each of its servers (a list kept here, not taken from the lab,
so a workload the lab stops running fails this check), every planned cell ran its rounds, no
run failed (so every run was error-free and the server's own count agreed with the client's),
every run holds its numbers (latency excepted where wrk cannot measure it: pipelined runs), the
provenance is recorded, and the report has its sections. It does not judge the numbers: this
machine is shared and noisy, so speed lives in the report, not here.

Usage: check_bench.py BIN_DIR"""
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
NUMBERS = ["cpu_us", "cpu_user_us", "cpu_sys_us", "syscalls_per_req", "requests",
           "server_requests"]
LOAD_NUMBERS = ["rps", "p50_us", "p99_us"]  # not on memory rows; no latency when pipelined
MEMORY_NUMBERS = ["rss_per_conn_bytes", "rss_per_conn_after_request_bytes", "rss_base_kib"]
HTTP = ("uring", "epoll", "threads", "nginx")
FLOORS = ("uring floor", "epoll floor")
BACKENDS = ("uring", "epoll", "threads")
# What quick mode must run: workload -> servers.
REQUIRED = {
    "plaintext c=64": HTTP + FLOORS,
    "plaintext c=64 pipelined 16": HTTP + FLOORS,
    "json c=64": HTTP,
    "delay 100 ms c=500": BACKENDS,
    "plaintext c=64 access log": HTTP,
    "static 1 KiB c=64": HTTP,
    "memory c=200 idle": HTTP,
    "echo 128 B c=64": BACKENDS,
    "https handshake P-256 c=16": ("uring", "nginx"),
}
CHURN = "churn 10 req/conn c=64"
PROVENANCE = ["date", "command", "cpu_model", "cores", "kernel", "vulnerabilities",
              "cpufreq_governor", "python", "liburing_version", "openssl_version",
              "nginx_version", "nginx_v", "wrk_version", "source_git", "binaries_mtime"]
BUILD = ["cxx_compiler", "cxx_compiler_version", "build_type", "cxx_flags", "cxx_flags_release"]
SECTIONS = ["## Provenance", "## Results", "## Ratios", "## Floors", "## Static files",
            "## Access log", "## Memory per connection", "## HTTPS", "## Ring knobs",
            "## Failed runs"]


def is_number(v):
    return isinstance(v, (int, float)) and not math.isnan(v) and v >= 0


def check_rows(rows, problems):
    """Every run: marked, not failed, its numbers there."""
    for r in rows:
        name = f"{r['workload']} / {r['server']} round {r.get('round')}"
        if not isinstance(r.get("round"), int) or not isinstance(r.get("failed"), bool) or \
                "failure" not in r:
            problems.append(f"{name}: round, failed or failure missing")
        if r.get("failed"):
            problems.append(f"{name}: failed: {r.get('failure')}")
            continue
        keys = NUMBERS + (MEMORY_NUMBERS if r.get("section") == "memory" else
                          ["rps"] if r.get("latency_note") else LOAD_NUMBERS)
        for key in keys:
            if not is_number(r.get(key)):
                problems.append(f"{name}: {key} is {r.get(key)!r}")
        if r.get("count") != "ok":
            problems.append(f"{name}: count {r.get('count')}")
        if r.get("file_bytes") and not is_number(r.get("disk_read_bytes")):
            problems.append(f"{name}: no disk read count")
        if "access log" in r["workload"] and not is_number(r.get("log_lines")):
            problems.append(f"{name}: no access log line count")


def check_plan(data, bin_dir, problems):
    """The required workloads ran on their servers, and every planned cell its rounds."""
    rows, meta = data["rows"], data["meta"]
    required = dict(REQUIRED)
    if (Path(bin_dir) / "http-load").exists():
        required[CHURN] = HTTP
    elif not any(s["workload"] == CHURN and "http-load" in s["reason"]
                 for s in meta.get("skipped", [])):
        problems.append(f"{CHURN}: neither run nor said to be skipped for want of http-load")
    for workload, servers in required.items():
        for server in servers:
            if not any(r["workload"] == workload and r["server"] == server and
                       not r.get("failed") for r in rows):
                problems.append(f"no run of {workload} on {server}")
    rounds = meta.get("rounds", 1)
    for cell in meta.get("plan", []):
        got = sum(1 for r in rows if r["workload"] == cell["workload"] and
                  r["server"] == cell["server"])
        planned = rounds * (2 if cell["server"] == "uring knob baseline" else 1)
        if got != planned:
            problems.append(f"{cell['workload']} / {cell['server']}: {got} runs, {planned} "
                            "planned")
    if not meta.get("plan") or not meta.get("planned_s"):
        problems.append("no planned cells or time in the meta")


def check_provenance(meta, problems):
    p = meta.get("provenance", {})
    for key in PROVENANCE:
        if p.get(key) in (None, "", {}) and not (key == "vulnerabilities" and not Path(
                "/sys/devices/system/cpu/vulnerabilities").is_dir()):
            problems.append(f"provenance: no {key}")
    for key in BUILD:
        if key not in p.get("build", {}):
            problems.append(f"provenance: no build {key}")


def check_report(text, data, problems):
    """The sections are there, the main table has a line per main cell, and the knob table a
    line per planned knob and workload, each filled."""
    rows, meta = data["rows"], data["meta"]
    for heading in SECTIONS:
        if f"\n{heading}\n" not in text:
            problems.append(f"the report has no {heading}")
    main_cells = {(r["workload"], r["server"]) for r in rows if r.get("section") == "main"}
    results = text.partition("\n## Results\n")[2].partition("\n## ")[0]
    table = [line for line in results.splitlines() if line.startswith("| ") and "---" not in line]
    if len(table) != len(main_cells) + 1:
        problems.append(f"the results table has {len(table) - 1} lines for {len(main_cells)} "
                        "cells")
    knob_section = text.partition("## Ring knobs")[2].partition("\n## ")[0]
    knob_table = [line for line in knob_section.splitlines()
                  if line.startswith("| ") and "---" not in line]
    knob_lines = {(w, label) for label, ws in meta.get("knob_plan", {}).items() for w in ws}
    if not knob_lines or len(knob_table) != len(knob_lines) + 1 or " - |" in knob_section:
        problems.append(f"the ring knob table is incomplete: {knob_section!r}")


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
        text = md[0].read_text()
        problems = []
        check_rows(data["rows"], problems)
        check_plan(data, bin_dir, problems)
        check_provenance(data["meta"], problems)
        check_report(text, data, problems)
        if len(pngs) < 3:
            problems.append(f"expected 3 charts, found {len(pngs)}")
        if problems:
            print(text)
            sys.exit("\n".join(problems))
        print(f"{len(data['rows'])} runs, every cell filled")


if __name__ == "__main__":
    main()
