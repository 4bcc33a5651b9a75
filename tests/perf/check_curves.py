#!/usr/bin/env python3
"""Runs the latency-against-load sweep in quick mode (perf/lab_curves.py --quick) and checks
its plumbing: a row per step of every quick server, the figures of every step that did not
fail are numbers and its server's count agrees, a failed step says why (at most one a server:
a one-second step with a 2 s timeout on a busy shared machine may miss; more is a fault), the
chart was drawn, and the report gives each server a knee line (a knee, none found, or
client-limited). It does not judge performance: whether a step kept up, whether a knee was
found and whether the client or the server was the limit are the sweep's findings, and on
this shared 2-core machine they vary from run to run.

Skipped (exit 77, ctest's SKIP_RETURN_CODE) when perf/http-load is not built.

Usage: check_curves.py BIN_DIR"""
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "perf"))
import lab_curves  # noqa: E402
from server_probe import check, summary  # noqa: E402

SKIP = 77
NUMBERS = ["offered_rps", "achieved_rps", "cpu_us", "requests", "server_requests", "unsent",
           "lost"] + [
    f"latency_us_{p}" for p in lab_curves.PERCENTILES]


def http_load_works(binary):
    try:
        return subprocess.run([str(binary), "--help"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def main():
    bin_dir = Path(sys.argv[1])
    if not http_load_works(bin_dir / "http-load"):
        print(f"SKIP: {bin_dir / 'http-load'} is not built (or its --help fails): "
              "the latency curves need perf/http-load")
        return SKIP
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run([sys.executable, str(ROOT / "perf" / "lab_curves.py"), "--bin",
                              str(bin_dir), "--out", out, "--quick"], capture_output=True,
                             text=True, timeout=240)
        sys.stderr.write(run.stderr)
        check("lab_curves.py --quick exits 0", run.returncode == 0, f"exit {run.returncode}")
        if run.returncode != 0:
            return summary()
        data = json.loads(next(Path(out).glob("*-curves.json")).read_text())
        report = next(Path(out).glob("*-curves.md")).read_text()
        rows = [r for r in data["rows"] if r["workload"] == lab_curves.WORKLOAD]
        for server in lab_curves.QUICK_SERVERS:
            mine = [r for r in rows if r["server"] == server]
            check(f"{server}: a row per quick step", len(mine) == len(lab_curves.QUICK_STEPS),
                  f"{len(mine)} rows")
            failed = [r for r in mine if r["failed"]]
            check(f"{server}: at most one failed step", len(failed) <= 1,
                  "; ".join(str(r.get("failure")) for r in failed))
            for r in mine:
                name = f"{server} at {r.get('offered_rps')} req/s"
                if r["failed"]:
                    check(f"{name}: failed with a stated reason",
                          bool((r.get("failure") or "").strip()))
                    continue
                bad = [k for k in NUMBERS if not isinstance(r.get(k), (int, float))
                       or math.isnan(r[k]) or r[k] < 0]
                check(f"{name}: every figure a number", not bad,
                      f"not numbers: {bad}" if bad else "")
                check(f"{name}: the server's count agrees", r.get("count") == "ok",
                      r.get("count"))
            knee = data["meta"]["curves"]["knees"].get(server) or {}
            line = lab_curves.knee_line(server, knee) if knee else None
            check(f"{server}: a knee line (or a client-limited one) in the report",
                  line is not None and f"\n{line}\n" in report, line or "no knee in meta")
            if knee.get("client_limited"):
                print(f"note: {server} {knee['client_limited']}")
        check("the report has its section", "## Latency against load" in report)
        check("the provenance is recorded (the binaries' build times among it)",
              bool(data["meta"].get("provenance", {}).get("binaries_mtime"))
              and "\n## Provenance\n" in report)
        check("the latency chart was drawn", any(Path(out).glob("*-latency.png")))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
