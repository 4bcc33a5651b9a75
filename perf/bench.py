#!/usr/bin/env python3
"""The perf lab: the three ringserve I/O models and nginx on the same work.

Every run pins the server to CPU 0 and the load generator to the other CPUs, and records
requests/s, latency p50/p99, the server's CPU time per request (user and system, from
/proc/PID/stat), its system calls per request (perf stat -e raw_syscalls:sys_enter, or strace -c
where perf is missing) and whether the server's own request count agrees with the client's.

A cell is one workload on one server; a run is one measurement of a cell. The lab runs in
rounds (--rounds; 3 with --full, 1 in quick mode): each round runs every workload on every
server back to back, in an order that rotates from round to round, so the machine's drift hits
all alike; the report gives medians and ranges, and ratios taken within a round. A run that
fails (its server does not start, its load tool fails, a request errs, the counts disagree) is
marked failed with the reason, kept out of every median, and the lab goes on.

Workloads: plaintext, json and delayed answers under wrk (with the floor responders beside the
plaintext loads), static files (a hot 1 KiB file, a 1 MiB file, a cold-cache set), the access
log on, memory per idle connection, connection churn (perf/http-load), 64 KiB and 128 B echo,
HTTPS beside nginx (see HTTPS_LOADS), the ring knobs, and scaling over loop threads
(--threads). --https-only runs the HTTPS part alone (perf/tls_bench.py does). --compare OLD.json
[NEW.json] prints every cell's ratios against an older run.

The report is a Markdown page (perf/lab_report.py), a JSON file with every run and the run's
provenance (perf/lab_provenance.py), and PNG charts (gnuplot). Run it through scripts/bench.sh
(quick by default, --full for the whole matrix in at most 30 minutes).
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The servers and machine facts live in lab_servers, the report in lab_report; bench re-exports
# them (bench.Ringserve, bench.Nginx, bench.median, ...) for the scripts that import the lab.
from lab_servers import (  # noqa: E402,F401
    HTTPS_SUITE, NGINX_STATIC, TICKS, Floor, Nginx, Ringserve, Server, TlsSetup, cpu_layout,
    cpu_ticks, disk_read_bytes, end_process, free_port, http_get, log, raise_fd_limit, rss_kib)
from lab_report import (  # noqa: E402,F401
    COLUMNS, HTTPS_TARGETS, KNOB_BASELINE, count_check, good, median, num, ratio, round_ratio,
    write_report)
import idle_memory  # noqa: E402
from lab_charts import write_charts  # noqa: E402
import lab_compare  # noqa: E402
import lab_provenance  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 30 * 60  # what --full must fit in on the 2-core development VM


# ---------------------------------------------------------------------------- load

def parse_duration_us(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[unit]


def pipeline_script(tmp, path, depth, close):
    """A wrk script sending depth requests for path at a time; close: each asks for
    Connection: close."""
    script = Path(tmp) / f"pipeline{depth}{'-close' if close else ''}.lua"
    headers = ', {["Connection"] = "close"}' if close else ""
    script.write_text(
        "init = function(args)\n"
        "  local r = {}\n"
        f"  for i = 1, {depth} do r[i] = wrk.format(nil, \"{path}\"{headers}) end\n"
        "  req = table.concat(r)\n"
        "end\n"
        "request = function() return req end\n")
    return script


def sequence_script(tmp, files, threads):
    """A wrk script asking for /cold/00000.bin, /cold/00001.bin, ... each once: thread i takes
    every threads-th file from i, and stops once it has its share of answers (what its
    connections still have in flight then asks again for the first files, at most one a
    connection). So a run reads the cold set once, however fast the server is. wrk waits out
    its duration all the same, so each thread notes (LuaJIT's ffi, CLOCK_MONOTONIC) when it sent
    its first request and had its last answer, and done() prints them: the rate is taken over
    that span (see wrk_load)."""
    script = Path(tmp) / f"sequence{files}-{threads}.lua"
    script.write_text(
        "local ffi = require(\"ffi\")\n"
        "ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } rs_timespec;\n"
        "           int clock_gettime(int clock, rs_timespec *tp); ]]\n"
        "local ts = ffi.new(\"rs_timespec\")\n"
        "local function now()\n"
        "  ffi.C.clock_gettime(1, ts)\n"
        "  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9\n"
        "end\n"
        "local threads = {}\n"
        "setup = function(thread)\n"
        "  thread:set(\"id\", #threads)\n"
        "  table.insert(threads, thread)\n"
        "end\n"
        "init = function(args)\n"
        f"  i = id\n  share = math.floor(({files} - id + {threads} - 1) / {threads})\n"
        "  answered = 0\n"
        "end\n"
        "request = function()\n"
        "  if not first then first = now() end\n"
        f"  local path = string.format(\"/cold/%05d.bin\", i % {files})\n"
        f"  i = i + {threads}\n"
        "  return wrk.format(nil, path)\n"
        "end\n"
        "response = function(status, headers, body)\n"
        "  answered = answered + 1\n"
        "  if answered == share then\n"
        "    last = now()\n"
        "    wrk.thread:stop()\n"
        "  end\n"
        "end\n"
        "done = function(summary, latency, requests)\n"
        "  for _, t in ipairs(threads) do\n"
        "    io.write(string.format(\"sequence span %s %s\\n\", tostring(t:get(\"first\")),\n"
        "                           tostring(t:get(\"last\"))))\n"
        "  end\n"
        "end\n")
    return script


def wrk_load(port, path, connections, seconds, depth, threads, load_cpus, tmp, scheme="http",
             close=False, env=None, script=None):
    """wrk on path, depth requests at a time per connection; close: each request asks for
    Connection: close, so every request has a connection (over https, a handshake) of its own.
    env: wrk's environment (the client's OpenSSL configuration); script: a wrk script of one's
    own instead (threads: wrk's threads, which the script must know). Raises when wrk fails."""
    threads = max(1, min(threads, connections))
    script = script or pipeline_script(tmp, path, depth, close)
    cmd = ["taskset", "-c", load_cpus, "wrk", f"-t{threads}", f"-c{connections}",
           f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script),
           f"{scheme}://127.0.0.1:{port}{path}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, env=env)
    out = done.stdout
    result = {"client": "wrk"}
    m = re.search(r"(\d+) requests in", out)
    if done.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): "
                           f"{(done.stderr or out).strip()[-300:]}")
    result["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(m.group(1)) if m else None
    spans = re.findall(r"^sequence span (\S+) (\S+)$", out, re.M)
    if spans and all(last != "nil" for _, last in spans):
        # Every thread of a sequence script had its share before the time was up: the rate is
        # over the span from the first request to the last answer, not wrk's whole duration.
        elapsed = max(float(last) for _, last in spans) - min(float(f) for f, _ in spans)
        result["elapsed_s"] = elapsed
        result["rps"] = result["requests"] / elapsed
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        result[key] = parse_duration_us(m.group(1)) if m else None
    if depth > 1:
        # wrk times a pipelined batch as one request but counts each response: its latency
        # histogram is meaningless then (percentiles above the median read 0), so none is given.
        result["p50_us"] = result["p99_us"] = None
        result["latency_note"] = "wrk cannot time pipelined requests"
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["socket_errors"] = sum(int(g) for g in m.groups()) if m else 0
    return result


def json_line(proc, prefix, tool):
    """The JSON result line a load tool printed (the line starting with prefix), or
    RuntimeError with what it said."""
    line = next((x for x in proc.stdout.splitlines() if x.startswith(prefix)), None)
    if line is None:
        raise RuntimeError(f"{tool} gave no result (exit {proc.returncode}): "
                           f"{(proc.stderr or proc.stdout).strip()[-300:]}")
    return json.loads(line)


def echo_load(binary, port, connections, seconds, size, load_cpus):
    """perf/echo-load's figures in the lab's keys (a message is a request)."""
    cmd = ["taskset", "-c", load_cpus, str(binary), "--port", str(port),
           "--connections", str(connections), "--size", str(size),
           "--duration-s", str(seconds), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    data = json_line(proc, "{", "echo-load")
    return {"client": "echo-load", "requests": data.get("messages"),
            "rps": data.get("messages_per_s"), "echo_messages": data.get("total_messages"),
            "p50_us": data.get("latency_us_p50"), "p99_us": data.get("latency_us_p99"),
            "non_2xx": 0, "socket_errors": data.get("errors", 0)}


def run_http_load(binary, port, path, connections, seconds, load_cpus, depth=1, churn=0, rate=0,
                  schedule="uniform", warmup=0, timeout=None):
    """perf/http-load's JSON result: by default a closed loop (rate 0), each connection keeping
    depth in flight; churn: requests per connection before it closes and a new one takes its
    place (0: kept); rate > 0: that many requests a second on the schedule; warmup: seconds
    not measured (the server still counts them); timeout: seconds a request may wait.
    RuntimeError, with what it said, when it refused its flags, gave no result or hung."""
    cmd = ["taskset", "-c", load_cpus, str(binary), "--port", str(port), "--path", path,
           "--rate", f"{rate:.3f}", "--schedule", schedule, "--duration", f"{seconds:g}",
           "--warmup", f"{warmup:g}", "--connections", str(connections), "--depth", str(depth),
           "--churn", str(churn), "--json"]
    if timeout is not None:
        cmd += ["--timeout", f"{timeout:g}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=seconds + warmup + (timeout or 0) + 60)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError("http-load did not finish") from e
    if proc.returncode not in (0, 1):  # 1: it ran, with errors or nothing measured
        raise RuntimeError(f"http-load exit {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()[-300:]}")
    return json_line(proc, '{"tool":"http-load"', "http-load")


def http_load(binary, port, path, connections, seconds, depth, churn, load_cpus):
    """A closed-loop http-load run in the lab's keys. No warm-up, so that its every response
    falls in the CPU and system calls measured."""
    d = run_http_load(binary, port, path, connections, seconds, load_cpus, depth, churn)
    # responses_total is what the server's count must agree with; the CPU and system calls
    # measured are for all of them. Its other figures keep their own names.
    return {"client": "http-load", "requests": d["responses_total"],
            "measured_requests": d["requests"], "rps": d["achieved_rps"],
            "p50_us": d["latency_us_p50"], "p99_us": d["latency_us_p99"],
            "non_2xx": d["non_2xx"], "socket_errors": d["errors"],
            **{k: d.get(k) for k in HTTP_LOAD_KEYS}}


# http-load's figures a row keeps as they are named there.
HTTP_LOAD_KEYS = ("rate", "schedule", "latency_us_p90", "latency_us_p999", "latency_us_max",
                  "latency_us_mean", "connections_opened", "backlog_max", "late_sends",
                  "timeouts", "resets", "connect_errors", "bad_responses", "stalls", "unsent",
                  "client_late_sends", "client_cpu_busy")


def memory_load(server, connections):
    """The memory row's load: perf/idle_memory.py's method on this server (every server
    answers GET /plaintext alike), as bytes of RSS per connection."""
    m = idle_memory.idle_connection_memory(server.port, server.pids, connections)
    return {"client": "idle_memory", "requests": connections + 1,  # the warm-up's included
            "rss_per_conn_bytes": (m["idle_kib"] - m["base_kib"]) * 1024 / connections,
            "rss_per_conn_after_request_bytes":
                (m["after_kib"] - m["base_kib"]) * 1024 / connections,
            "rss_base_kib": m["base_kib"], "non_2xx": 0, "socket_errors": 0}


class SyscallCounter:
    """System calls made by the server while the load runs: perf stat, else strace -c.

    perf counts every system call entered on the server's CPU: the server is pinned there and
    the load is not, and unlike `perf stat -p` this also sees threads started during the run
    (the threads backend's workers)."""

    def __init__(self, pids, server_cpu, tmp):
        self.out = Path(tmp) / "syscalls.txt"
        if shutil.which("perf"):
            self.tool = "perf"
            cmd = ["perf", "stat", "-e", "raw_syscalls:sys_enter", "-x,", "-o", str(self.out),
                   "-a", "-C", server_cpu]
        else:
            self.tool = "strace"
            cmd = ["strace", "-f", "-c", "-o", str(self.out)] + sum(
                (["-p", str(p)] for p in pids), [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_attached(pids)

    def wait_attached(self, pids, bound_s=5):
        """Returns once the counter counts (perf holds its event descriptor; strace traces every
        pid), so that the load starts after it; after bound_s the run goes on without (its
        figure is then a little low, which beats a lab stuck on a tool)."""
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.tool == "perf":
                    fds = Path(f"/proc/{self.proc.pid}/fd")
                    if any("perf_event" in os.readlink(fd) for fd in fds.iterdir()):
                        return
                elif all(re.search(r"^TracerPid:\s*[1-9]", Path(f"/proc/{p}/status").read_text(),
                                   re.M) for p in pids):
                    return
            except OSError:
                pass  # a descriptor closed while being read: look again
            time.sleep(0.005)
        log(f"{self.tool} did not attach within {bound_s} s")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        text = self.out.read_text() if self.out.exists() else ""
        if self.tool == "perf":
            for line in text.splitlines():
                fields = line.split(",")
                if len(fields) > 2 and "raw_syscalls" in line and fields[0].strip().isdigit():
                    return int(fields[0])
            return None
        m = re.search(r"^\s*100\.00\s+\S+\s+\S+\s+\S+\s+(\d+)", text, re.M)
        return int(m.group(1)) if m else None


def measure(server, run_load, server_cpu, tmp):
    """run_load() on the started server, with the server's CPU time, system calls, disk reads
    and request count taken around it: the load's result with the figures per request added."""
    before_count = server.requests_served()
    tls0 = getattr(server, "tls_counts", None)
    u0, s0 = cpu_ticks(server.pids)
    read0 = disk_read_bytes(server.pids)
    counter = SyscallCounter(server.pids, server_cpu, tmp)
    try:
        result = run_load()
    finally:
        syscalls = counter.stop()
    u1, s1 = cpu_ticks(server.pids)
    result["disk_read_bytes"] = disk_read_bytes(server.pids) - read0
    after_count = server.requests_served()
    tls1 = getattr(server, "tls_counts", None)
    n = result.get("requests") or 0
    result["syscalls"] = syscalls
    result["syscall_tool"] = counter.tool
    if n > 0:
        result["cpu_user_us"] = (u1 - u0) * 1e6 / TICKS / n
        result["cpu_sys_us"] = (s1 - s0) * 1e6 / TICKS / n
        result["cpu_us"] = result["cpu_user_us"] + result["cpu_sys_us"]
        result["syscalls_per_req"] = syscalls / n if syscalls is not None else None
        if tls0 and tls1:
            # The second count's connection made a full handshake of its own.
            result["full_handshakes_per_req"] = (tls1[0] - tls0[0] - 1) / n
            result["resumed_per_req"] = (tls1[1] - tls0[1]) / n
    if before_count is not None and after_count is not None:
        # The second count's own request is included; the client may stop counting with
        # requests still in flight (at most one batch per connection).
        result["server_requests"] = after_count - before_count - 1
    result.pop("raw", None)
    return result


# ---------------------------------------------------------------------------- cells and rounds

@dataclass
class Cell:
    """One workload on one server: make() builds a fresh server for each run, load(server)
    loads the started server and returns the client's figures, prepare() (before the server
    starts) and finish(server, row) (after it stopped: counts it gives at exit) are optional.
    extra: keys every row of the cell carries. estimate_s: what one run is planned to take."""
    workload: str
    server: str
    make: object
    load: object
    connections: int
    depth: int = 1
    section: str = "main"
    extra: dict = None
    prepare: object = None
    finish: object = None
    server_cpu: str = None
    estimate_s: float = 0
    follows_seconds: bool = True  # its load lasts --seconds (memory rows and a few do not)


class Group:
    """The cells of one workload, run back to back; order(round) rotates them by one each
    round, so no server always runs first (or last) in a workload."""

    def __init__(self, cells):
        self.cells = cells

    def order(self, round_no):
        shift = round_no % len(self.cells)
        return self.cells[shift:] + self.cells[:shift]


class KnobGroup(Group):
    """A workload's ring knobs: the default run opens and closes every round (a knob is compared
    with their mean, which cancels a steady drift across the round) and the knobs rotate."""

    def __init__(self, baseline, knobs):
        super().__init__([baseline] + knobs)

    def order(self, round_no):
        baseline, knobs = self.cells[0], self.cells[1:]
        shift = round_no % len(knobs)
        return [baseline] + knobs[shift:] + knobs[:shift] + [baseline]


# A cold static run must have read at least this share of the bytes it served from the disk:
# below it the cold set was (partly) in the page cache, and the row measures a hot one.
COLD_SHARE = 0.5


def disk_share(row):
    """What a static row read from the disk against the bytes it served, or None."""
    served = (row.get("file_bytes") or 0) * (row.get("requests") or 0)
    read = row.get("disk_read_bytes")
    return None if read is None or not served else read / served


def judge(row, failure=None):
    """Marks the row failed (with the first reason found) or not: a failure passed in (start or
    load), no requests measured, any request error, the server's count and the client's
    disagreeing or not both there, a cold static run that read under COLD_SHARE of what it
    served from the disk, or an access log with fewer lines than the requests served."""
    row["count"] = count_check(row)
    row["errors"] = (row.get("non_2xx") or 0) + (row.get("socket_errors") or 0)
    if failure is None:
        if not row.get("requests"):
            failure = "no requests measured"
        elif row["errors"]:
            failure = (f"{row['errors']} errors ({row.get('non_2xx') or 0} non-2xx answers, "
                       f"{row.get('socket_errors') or 0} socket errors)")
        elif row["count"] == "n/a":
            failure = "no server count to check the client's against"
        elif row["count"] != "ok":
            failure = f"count mismatch: {row['count']}"
        elif row.get("cold_files") and (disk_share(row) or 0) < COLD_SHARE:
            share = disk_share(row)
            failure = ("not cold: only " + ("an unknown share" if share is None
                                            else f"{share:.0%}") + " read from disk")
        elif "log_lines" in row and row["log_lines"] < row["server_requests"]:
            failure = (f"access log: {row['log_lines']} lines for {row['server_requests']} "
                       "requests served (lines dropped)")
    row["failed"] = failure is not None
    row["failure"] = " ".join(failure.split()) if failure else None  # one line
    return row


def run_cell(cell, round_no, lab):
    """One run of the cell: starts its server, measures the load, stops it, and returns the row,
    failed with the reason where anything went wrong (the lab goes on with the next cell)."""
    row = {"workload": cell.workload, "server": cell.server, "connections": cell.connections,
           "depth": cell.depth, "round": round_no, "section": cell.section,
           **(cell.extra or {})}
    log(f"{cell.workload:32} {cell.server:10} round {round_no}")
    started = time.monotonic()
    failure = None
    server = None
    try:
        if cell.prepare:
            cell.prepare()
        server = cell.make()
        server.start()
    except Exception as e:  # noqa: BLE001 (any failure to start fails this run only)
        failure = f"server did not start: {e}"
    if failure is None:
        try:
            row.update(measure(server, lambda: cell.load(server), cell.server_cpu or
                               lab.server_cpu, lab.tmp))
        except Exception as e:  # noqa: BLE001
            failure = f"load failed: {e}"
    if server is not None:
        try:
            server.stop()
        except Exception as e:  # noqa: BLE001
            failure = failure or f"server did not stop: {e}"
        row["setup"] = getattr(server, "setup", None)
        counters = getattr(server, "counters", {})
        if counters.get("recv_completions"):
            # Bytes per receive completion: what bundles and buffer sizes change.
            row["bytes_per_recv"] = counters["bytes_in"] / counters["recv_completions"]
        if cell.finish and failure is None:
            cell.finish(server, row)
    judge(row, failure)
    row["run_s"] = round(time.monotonic() - started, 2)  # what the plan's estimate is for
    log(f"  FAILED: {row['failure']}" if row["failed"] else f"  {fmt_row(row)}")
    return row


def run_rounds(groups, rounds, lab, rows):
    """Round by round, every group's cells back to back in the group's order for the round;
    rows gets every run's row as it is made."""
    for round_no in range(rounds):
        for group in groups:
            for cell in group.order(round_no):
                rows.append(run_cell(cell, round_no, lab))


def fmt_row(r):
    """The progress line of a run, on stderr as the lab goes."""
    return (f"rps={num(r.get('rps'), 0)} p50={num(r.get('p50_us'), 0)}us "
            f"p99={num(r.get('p99_us'), 0)}us cpu/req={num(r.get('cpu_us'), 2)}us "
            f"syscalls/req={num(r.get('syscalls_per_req'), 3)} "
            f"client={r.get('requests_checked', r.get('requests'))} "
            f"server={r.get('server_requests')}")


# ---------------------------------------------------------------------------- the lab

COLD_FILE_BYTES = 64 * 1024
STATIC_FILES = {"/1k.bin": 1024, "/1m.bin": 1024 * 1024}


class Lab:
    """What the cells of one lab run share: the binaries, the CPUs, seconds per run, the run's
    temporary directory, and what is made once for the whole run (the certificate, the static
    root and its cold set)."""

    def __init__(self, bin_dir, seconds, tmp):
        self.bin = bin_dir
        self.server_cpu, self.load_cpus, self.load_threads = cpu_layout()
        self.seconds = seconds
        self.tmp = tmp
        self._tls = None
        self._root = None
        self.cold_files = 0
        self.made = 0

    def tls(self):
        """The run's certificate, made at the first HTTPS run."""
        if self._tls is None:
            self._tls = TlsSetup(self.tmp)
        return self._tls

    def root(self):
        """The static root: /1k.bin and /1m.bin (random bytes), world-readable for nginx's
        worker. On the disk (/var/tmp), not in a tmpfs, so that the cold set can be cold."""
        if self._root is None:
            base = "/var/tmp" if os.path.isdir("/var/tmp") else None
            self._root = Path(tempfile.mkdtemp(prefix="rs-static-", dir=base))
            self._root.chmod(0o755)
            for path, size in STATIC_FILES.items():
                (self._root / path.lstrip("/")).write_bytes(os.urandom(size))
        return self._root

    def cold_set(self, files):
        """root()/cold/00000.bin ... of COLD_FILE_BYTES each, written to the disk."""
        cold = self.root() / "cold"
        if self.cold_files != files:
            shutil.rmtree(cold, ignore_errors=True)
            cold.mkdir(mode=0o755)
            data = os.urandom(COLD_FILE_BYTES)
            for i in range(files):
                (cold / f"{i:05d}.bin").write_bytes(data)
            os.sync()  # dirty pages cannot be evicted
            self.cold_files = files
        return cold

    def evict_cold(self):
        """Every file of the cold set out of the page cache, so the next run reads the disk."""
        for f in (self.root() / "cold").iterdir():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)

    def new_path(self, name):
        """A fresh file name in the run's directory (a run's access log)."""
        self.made += 1
        return Path(self.tmp) / f"{self.made}-{name}"

    def http_server(self, label, server_cpu=None, access_log=False, **options):
        """A function making a fresh HTTP server `label` ("uring", "epoll", "threads", "nginx",
        "uring floor", "epoll floor"); options: tls, root, extra_args (ringserve's); with
        access_log each run logs to a new file of the run's directory."""
        cpu = server_cpu or self.server_cpu

        def make():
            if access_log:
                options["access_log"] = self.new_path("access.log")
            if label == "nginx":
                options.pop("extra_args", None)
                return Nginx(cpu, **options)
            if label.endswith(" floor"):
                model = label.split()[0]
                return Floor(self.bin / f"floor-{model}", model, cpu)
            return Ringserve(self.bin / "ringserve-http", label, cpu, "http", **options)
        return make

    def cleanup(self):
        """The static root goes (it is on the disk, not in the run's temporary directory)."""
        if self._root:
            shutil.rmtree(self._root, ignore_errors=True)


def count_log_lines(server, row):
    """The access log's lines, kept in the row; the file goes."""
    path = Path(server.access_log)
    with path.open("rb") as f:
        row["log_lines"] = sum(1 for _ in f)
    path.unlink()


def floor_count(server, row):
    """A floor's own count, which it prints at exit (after the row's figures were taken)."""
    row["server_requests"] = server.answered  # a floor counts until it exits


# ---------------------------------------------------------------------------- the matrix

@dataclass
class HttpWorkload:
    """An HTTP workload: GET path on `connections` connections, depth at a time. floors: the
    floor responders run it too; static: served from the lab's static root ("hot" or "cold");
    access_log: the servers log every request; churn: perf/http-load instead of wrk, with a new
    connection every churn requests."""
    name: str
    path: str
    connections: int
    depth: int = 1
    floors: bool = False
    static: str = None
    access_log: bool = False
    churn: int = 0
    min_seconds: int = 0  # at least this long a run, whatever --seconds says


# The workloads both modes run, quick mode briefly.
PLAINTEXT_64 = HttpWorkload("plaintext c=64", "/plaintext", 64, floors=True)
ACCESS_LOG = HttpWorkload("plaintext c=64 access log", "/plaintext", 64, access_log=True)
STATIC_1K = HttpWorkload("static 1 KiB c=64", "/1k.bin", 64, static="hot")
CHURN = HttpWorkload("churn 10 req/conn c=64", "/plaintext", 64, churn=10)
HTTP_FULL = [
    PLAINTEXT_64,
    HttpWorkload("plaintext c=256", "/plaintext", 256, floors=True),
    HttpWorkload("plaintext c=1024", "/plaintext", 1024, floors=True),
    HttpWorkload("plaintext c=256 pipelined 16", "/plaintext", 256, 16, floors=True),
    HttpWorkload("json c=256", "/json", 256),
    # Opening 10,000 connections (10,000 threads on threads) takes seconds of the run on the
    # VM: at 5 s the threads backend had answered none in a full run.
    HttpWorkload("delay 100 ms c=10000", "/delay?ms=100", 10000, min_seconds=10),
    ACCESS_LOG, STATIC_1K,
    HttpWorkload("static 1 MiB c=16", "/1m.bin", 16, static="hot"),
    HttpWorkload("static cold 64 KiB c=16", "/cold/", 16, static="cold"),
    CHURN,
]
HTTP_QUICK = [
    PLAINTEXT_64,
    HttpWorkload("plaintext c=64 pipelined 16", "/plaintext", 64, 16, floors=True),
    HttpWorkload("json c=64", "/json", 64),
    # One second holds too few 100 ms answers of 500 threads on a busy VM.
    HttpWorkload("delay 100 ms c=500", "/delay?ms=100", 500, min_seconds=2),
    ACCESS_LOG, STATIC_1K, CHURN,
]
HTTP_SERVERS = ("uring", "epoll", "threads", "nginx")
# The 64 KiB echo is a stream: what receive bundles, incremental buffers and SEND_ZC are for.
ECHO_FULL = [("echo 128 B c=64", 64, 128), ("echo 128 B c=512", 512, 128),
             ("echo 64 KiB c=16", 16, 65536)]
ECHO_QUICK = [("echo 128 B c=64", 64, 128)]
MEMORY_FULL = (1000, 10000)
MEMORY_QUICK = (200,)

# (workload, connections, depth, a new connection per request, the key exchange group); a new
# connection per request is a full handshake per request: neither server resumes sessions.
HTTPS_LOADS = [("https plaintext c=64", 64, 1, False, "X25519"),
               ("https plaintext c=64 pipelined 16", 64, 16, False, "X25519"),
               ("https handshake X25519 c=16", 16, 1, True, "X25519"),
               ("https handshake P-256 c=16", 16, 1, True, "P-256")]
HTTPS_SERVERS = ("uring", "epoll", "nginx")
# Quick mode: one load on uring and nginx, for the plumbing (certificate, both servers' TLS,
# the client's group, the handshake count).
HTTPS_QUICK = (["https handshake P-256 c=16"], ("uring", "nginx"))

# Ring tuning flags and the workloads each is measured on, in the same rounds as the rest (see
# KnobGroup): each knob's figure is the median over rounds of its ratio to the default runs of
# its own round, so the VM's drift from minute to minute cancels instead of landing on one knob.
_SMALL = ("plaintext c=256", "echo 128 B c=64")
_STREAM = ("echo 128 B c=64", "echo 64 KiB c=16")
KNOBS = [
    ("uring wait 16/50us", ["--uring-wait-batch", "16", "--uring-wait-usec", "50"], _SMALL),
    ("uring no DEFER_TASKRUN", ["--uring-defer-taskrun", "false"], _SMALL),
    ("uring 4 KiB buffers", ["--buffer-size", "4096"], _SMALL),
    ("uring 64 buffers", ["--buffer-count", "64"], _SMALL),
    ("uring fixed files", ["--uring-fixed-files", "4096"], _SMALL),
    ("uring recv bundles", ["--uring-recv-bundle", "true"], _STREAM),
    ("uring incremental buffers", ["--uring-incremental-buffers", "true"], _STREAM),
    # On loopback the kernel copies anyway, so this row shows what zero copy costs, not gains.
    ("uring send zc >= 16 KiB", ["--uring-send-zc", "16384"], ("echo 64 KiB c=16",)),
    # With zero copy too (its sends are the ones that take registered buffers): compare it with
    # the row above on the echo stream; plaintext sends nothing from them.
    ("uring registered buffers", ["--uring-registered-buffers", "true", "--uring-send-zc", "16384"],
     ("plaintext c=64", "echo 64 KiB c=16", "static 1 MiB c=16")),
]
# Quick mode runs the newest flags once each, so a flag the server refuses fails the lab test.
QUICK_KNOBS = [(label, flags, ("echo 128 B c=64",)) for label, flags, _ in KNOBS[4:]]

# What a run takes beyond its seconds of load (start, the counter, the counts, stop), by
# experience on the 2-core VM; a memory run is its settle pauses and connections instead.
OVERHEAD_S = 0.6
CONNECT_S_PER_10K = 3.0


def cold_files_for(seconds):
    """Files in the cold set: about what the fastest server asks for in a run of that length
    on the VM (2,000 a second), so a run reads most of the set once; 1,024 to 16,384 (1 GiB)."""
    return max(1024, min(16384, 2048 * seconds))


class Plan:
    """The cells of a lab run, grouped by workload, and those not run with the reason."""

    def __init__(self, lab):
        self.lab = lab
        self.groups = []
        self.skipped = []

    def skip(self, workload, server, reason):
        """A cell not run, with why: the report lists it instead of leaving a silent gap."""
        self.skipped.append({"workload": workload, "server": server, "reason": reason})

    def estimate(self, connections, seconds=None):
        """What a run is planned to take: its load, the start, count and stop, and opening its
        connections."""
        s = self.lab.seconds if seconds is None else seconds
        return s + OVERHEAD_S + CONNECT_S_PER_10K * connections / 10000

    def http(self, workloads):
        """A group per HTTP workload: the four servers (and the floors where asked), less those
        it cannot apply to."""
        lab = self.lab
        for w in workloads:
            cells = []
            servers = list(HTTP_SERVERS)
            if w.floors:
                servers += [f"{m} floor" for m in ("uring", "epoll")
                            if (lab.bin / f"floor-{m}").exists()]
            for label in servers:
                reason = self.not_applicable(w, label)
                if reason:
                    self.skip(w.name, label, reason)
                else:
                    cells.append(self.http_cell(w, label))
            if cells:
                self.groups.append(Group(cells))

    def not_applicable(self, w, label):
        """Why workload w cannot run on server label, or None."""
        if label == "nginx" and w.path.startswith("/delay"):
            return "nginx has no delayed answer without a third-party module"
        if w.churn and not (self.lab.bin / "http-load").exists():
            return f"{self.lab.bin}/http-load is missing (perf/http-load not built)"
        return None

    def http_cell(self, w, label):
        """Workload w on server label: its server maker, load, and what its rows carry."""
        lab = self.lab
        options, extra, prepare, finish, script = {}, {}, None, None, None
        if label.endswith(" floor"):
            finish = floor_count
        if w.static:
            options["root"] = lab.root()
            extra["file_bytes"] = STATIC_FILES.get(w.path, COLD_FILE_BYTES)
        if w.static == "cold":
            files = cold_files_for(lab.seconds)
            extra["cold_files"] = files

            def prepare():
                lab.cold_set(files)  # written at the first run
                lab.evict_cold()
            script = sequence_script(lab.tmp, files, min(lab.load_threads, w.connections))
        if w.access_log:
            finish = count_log_lines
        make = lab.http_server(label, access_log=w.access_log, **options)
        seconds = max(lab.seconds, w.min_seconds)

        if w.churn:
            def load(s):
                return http_load(lab.bin / "http-load", s.port, w.path, w.connections,
                                 seconds, w.depth, w.churn, lab.load_cpus)
        else:
            def load(s):
                return wrk_load(s.port, w.path, w.connections, seconds, w.depth,
                                lab.load_threads, lab.load_cpus, lab.tmp, script=script)
        return Cell(w.name, label, make, load, w.connections, w.depth, extra=extra,
                    prepare=prepare, finish=finish, follows_seconds=not w.min_seconds,
                    estimate_s=self.estimate(w.connections, seconds))

    def scaling(self, threads):
        """plaintext c=256 with the server on T cores (ringserve --threads T --pin, nginx T
        workers) and the load on the rest, for each T > 1 the machine has room for."""
        lab = self.lab
        w = HttpWorkload("plaintext c=256", "/plaintext", 256)
        for t in threads:
            name = f"plaintext c=256 on {t} cores"
            if t == 1:
                continue  # the ordinary plaintext c=256 row
            cores = len(os.sched_getaffinity(0))  # the CPUs this process may use
            if cores < t + 1:
                for label in ("uring", "epoll", "nginx"):
                    self.skip(name, label, f"needs {t} server cores and 1 load core; this "
                              f"process may use {cores}")
                continue
            server_cpu, load_cpus, load_threads = cpu_layout(t)
            cells = []
            for label in ("uring", "epoll", "nginx"):
                make = lab.http_server(label, server_cpu,
                                       extra_args=["--threads", str(t), "--pin"])

                def load(s, load_cpus=load_cpus, load_threads=load_threads):
                    return wrk_load(s.port, w.path, w.connections, lab.seconds, 1,
                                    load_threads, load_cpus, lab.tmp)
                cells.append(Cell(name, label, make, load, w.connections,
                                  extra={"server_cores": t}, server_cpu=server_cpu,
                                  estimate_s=self.estimate(w.connections)))
            self.groups.append(Group(cells))

    def echo(self, loads):
        """A group per echo load on the three backends, or skips where echo-load is not built."""
        lab = self.lab
        if not (lab.bin / "echo-load").exists():
            for name, _, _ in loads:
                self.skip(name, "all", f"{lab.bin}/echo-load is missing")
            return
        for name, conns, size in loads:
            self.groups.append(Group([self.echo_cell(name, conns, size, b)
                                      for b in ("uring", "epoll", "threads")]))

    def echo_cell(self, name, conns, size, backend, label=None, flags=(), section="main"):
        """ringserve-echo on backend (label and flags: a ring knob run) under echo-load."""
        lab = self.lab

        def finish(server, row):
            # The echo server counts bytes, not messages: it must have echoed exactly every
            # message the client sent (warm-up and the drain at the end included). Its byte
            # count comes at exit.
            if server.bytes_out is not None and row.get("echo_messages") is not None:
                row["server_requests"] = server.bytes_out // size
                row["requests_checked"] = row["echo_messages"]
        return Cell(name, label or backend,
                    lambda: Ringserve(lab.bin / "ringserve-echo", backend, lab.server_cpu,
                                      "echo", label, flags),
                    lambda s: echo_load(lab.bin / "echo-load", s.port, conns, lab.seconds,
                                        size, lab.load_cpus),
                    conns, section=section, finish=finish, estimate_s=self.estimate(conns))

    def memory(self, counts):
        """A group per connection count: memory per idle connection on the four servers."""
        lab = self.lab
        for n in counts:
            cells = []
            for label in HTTP_SERVERS:
                # No idle connection may time out while the others open: nginx waits 60 s for
                # a first request (client_header_timeout), ringserve 10 s unless told.
                make = lab.http_server(label, extra_args=["--header-timeout-ms", "60000"])
                cells.append(Cell(f"memory c={n} idle", label, make,
                                  lambda s, n=n: memory_load(s, n), n, section="memory",
                                  follows_seconds=False,
                                  estimate_s=3 * idle_memory.SETTLE_S + OVERHEAD_S +
                                  2 * CONNECT_S_PER_10K * n / 10000))
            self.groups.append(Group(cells))

    def https(self, loads, servers):
        """A group per HTTPS load on servers, all with the run's certificate."""
        lab = self.lab
        for name, conns, depth, close, group in loads:
            cells = []
            for label in servers:
                extra = {"group": group, "new_connection": close, "tls": f"TLS 1.3 {HTTPS_SUITE}"}

                def load(s, c=conns, d=depth, close=close, group=group):
                    return wrk_load(s.port, "/plaintext", c, lab.seconds, d, lab.load_threads,
                                    lab.load_cpus, lab.tmp, "https", close,
                                    lab.tls().client_env(group))
                cells.append(Cell(name, label, self.tls_server(label), load, conns, depth,
                                  section="https", extra=extra, finish=keep_ktls,
                                  estimate_s=self.estimate(conns)))
            self.groups.append(Group(cells))

    def tls_server(self, label):
        """A maker for label serving https with the run's certificate (made at the first run)."""
        def make():
            return self.lab.http_server(label, tls=self.lab.tls())()
        return make

    def knobs(self, knobs, http, echo):
        """Per workload, a KnobGroup of the knobs measured on it."""
        lab = self.lab
        workloads = {w.name: w for w in http}
        workloads.update({name: (conns, size) for name, conns, size in echo})
        has_echo = (lab.bin / "echo-load").exists()
        for workload, spec in workloads.items():
            mine = [(label, flags) for label, flags, on in knobs if workload in on]
            if not mine or (not isinstance(spec, HttpWorkload) and not has_echo):
                continue
            cells = []
            for label, flags in [(KNOB_BASELINE, [])] + mine:
                if isinstance(spec, HttpWorkload):
                    cell = self.http_cell(spec, "uring")
                    cell.server = label
                    # A static workload's knob runs serve the lab's root too.
                    root = lab.root() if spec.static else None
                    cell.make = (lambda label=label, flags=flags, root=root: Ringserve(
                        lab.bin / "ringserve-http", "uring", lab.server_cpu, "http", label,
                        flags, root=root))
                    cell.section = "knobs"
                else:
                    cell = self.echo_cell(workload, *spec, "uring", label, flags, "knobs")
                cells.append(cell)
            self.groups.append(KnobGroup(cells[0], cells[1:]))

    def cells_per_round(self):
        """Every cell once, in round 0's order (a knob baseline twice)."""
        return [cell for g in self.groups for cell in g.order(0)]


def keep_ktls(server, row):
    """Whether ringserve's kTLS was on, as its start-up line said: the HTTPS section names it."""
    row["ktls"] = getattr(server, "ktls", None)


def full_seconds(plan, rounds):
    """Seconds per run for --full: as many (1 to 10) as let the planned time fit BUDGET_S, with
    a tenth kept for what the estimates miss."""
    cells = plan.cells_per_round()
    timed = [c for c in cells if c.follows_seconds]
    fixed = sum(c.estimate_s for c in cells) - plan.lab.seconds * len(timed)
    spare = BUDGET_S * 0.9 / rounds - fixed
    return max(1, min(10, math.floor(spare / max(1, len(timed)))))


def make_plan(args, lab):
    """The run's cells, by the mode and flags."""
    plan = Plan(lab)
    http, echo = (HTTP_FULL, ECHO_FULL) if args.full else (HTTP_QUICK, ECHO_QUICK)
    https_loads, https_servers = (HTTPS_LOADS, HTTPS_SERVERS) if args.full else (
        [load for load in HTTPS_LOADS if load[0] in HTTPS_QUICK[0]], HTTPS_QUICK[1])
    if not args.https_only:
        plan.http(http)
        plan.scaling(args.threads)
        plan.echo(echo)
        plan.memory(MEMORY_FULL if args.full else MEMORY_QUICK)
    plan.https(https_loads, https_servers)
    if not args.https_only:
        plan.knobs(KNOBS if args.full else QUICK_KNOBS, http, echo)
    return plan


def plan_text(plan, rounds):
    """The planned time per cell and in all, as printed before the run and kept in the report."""
    cells = plan.cells_per_round()
    total = rounds * sum(c.estimate_s for c in cells)
    lines = [f"{c.workload} / {c.server}: {c.estimate_s:.1f} s" for c in cells]
    lines.append(f"planned: {len(cells)} runs a round x {rounds} round(s) = "
                 f"{len(cells) * rounds} runs of {plan.lab.seconds} s of load each (memory "
                 f"runs: their pauses), {total:.0f} s ({total / 60:.1f} min) with "
                 f"{OVERHEAD_S} s a run to start, count and stop")
    return lines, total


def run_all(args):
    """Runs the lab as args say: (rows, meta)."""
    raise_fd_limit()
    # Taken before the first run: the tree as the binaries met it, not as edits left it later.
    provenance = lab_provenance.collect(args.bin, ROOT)
    rounds = args.rounds or (3 if args.full else 1)
    tmp = tempfile.mkdtemp(prefix="rs-bench-")
    lab = Lab(args.bin, args.seconds or 1, tmp)
    rows = []
    started = time.monotonic()
    try:
        plan = make_plan(args, lab)
        if args.full and not args.seconds:
            lab.seconds = full_seconds(plan, rounds)
            plan = make_plan(args, lab)  # the estimates and the cold set follow the seconds
        lines, planned = plan_text(plan, rounds)
        for line in lines:
            log(line)
        run_rounds(plan.groups, rounds, lab, rows)
    finally:
        lab.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    knobs = KNOBS if args.full else QUICK_KNOBS
    knob_flags = {KNOB_BASELINE: "(defaults)"}
    knob_flags.update({label: " ".join(flags) for label, flags, _ in knobs})
    # What the knob table must hold: every knob on each of its workloads, and their baselines.
    knob_cells = {(c.workload, c.server) for c in plan.cells_per_round() if c.section == "knobs"}
    knob_plan = {}
    for workload, label in sorted(knob_cells):
        knob_plan.setdefault(label, []).append(workload)
    meta = {"mode": "full" if args.full else ("https-only" if args.https_only else "quick"),
            "rounds": rounds, "seconds": lab.seconds, "server_cpu": lab.server_cpu,
            "load_cpus": lab.load_cpus, "runs_per_round": len(plan.cells_per_round()),
            "runs": len(rows), "planned_s": round(planned), "plan": [
                {"workload": c.workload, "server": c.server, "section": c.section,
                 "estimate_s": round(c.estimate_s, 1)} for c in plan.cells_per_round()],
            "wall_s": round(time.monotonic() - started), "skipped": plan.skipped,
            "knobs": knob_flags, "knob_plan": knob_plan, "https_suite": HTTPS_SUITE,
            "nginx_static": NGINX_STATIC, "cold_files": lab.cold_files,
            "provenance": provenance}
    return rows, meta


def run_curves(args, rows, meta):
    """The latency-vs-load curves of perf/lab_curves.py (imported here: it imports bench)."""
    import lab_curves
    lab_curves.run_curves(args, rows, meta)


# The flags that ask for a run: with --compare OLD.json and none of them, nothing runs.
RUN_FLAGS = ("full", "all", "https_only", "curves", "seconds", "rounds", "threads")


def thread_counts(text):
    """--threads' list of server core counts, "1,2,4"."""
    return [int(t) for t in text.split(",") if t.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="the whole matrix, 3 rounds, within 30 minutes")
    parser.add_argument("--seconds", type=int,
                        help="seconds per run (default 1 quick; with --full, what fits 30 min)")
    parser.add_argument("--rounds", type=int, help="rounds of every cell (default 1 quick, 3 full)")
    parser.add_argument("--threads", type=thread_counts,
                        help="server cores to scale over, e.g. 1,2,4 (default 1 quick, 1,2,4 "
                        "full): ringserve --threads T and nginx with T workers on T cores")
    parser.add_argument("--https-only", action="store_true",
                        help="only the HTTPS part (quick: one load on uring and nginx)")
    parser.add_argument("--curves", action="store_true",
                        help="only the latency-vs-load curves (perf/lab_curves.py)")
    parser.add_argument("--all", action="store_true", help="--full, then the curves")
    parser.add_argument("--compare", nargs="+", metavar="JSON", type=Path,
                        help="OLD.json [NEW.json]: every cell's ratios to OLD's, of NEW, or of "
                        "this run where a mode flag (--full, --rounds, ...) asks for one, or "
                        "else of the newest report in --out; nothing runs without such a flag")
    parser.add_argument("--bin", type=Path, default=ROOT / "build" / "bin",
                        help="the built binaries (release build)")
    parser.add_argument("--out", type=Path, default=ROOT / "perf" / "results",
                        help="where the report, JSON and charts go")
    args = parser.parse_args()
    if args.compare and len(args.compare) > 2:
        parser.error("--compare takes OLD.json, or OLD.json NEW.json")
    runs = any(getattr(args, flag) for flag in RUN_FLAGS)
    if args.compare and (len(args.compare) == 2 or not runs):
        # Nothing to run: NEW, or the newest report in --out, against OLD.
        old = args.compare[0]
        new = args.compare[1] if len(args.compare) == 2 else lab_compare.newest(args.out, old)
        if new is None:
            sys.exit(f"bench: no report in {args.out} to compare with {old}")
        print("\n".join(lab_compare.compare(lab_compare.read_rows(old),
                                            lab_compare.read_rows(new), old.name, new.name)))
        return
    for tool in ("wrk", "nginx", "taskset", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing; run scripts/setup.sh --lab")
    args.full = args.full or args.all
    if args.threads is None:
        args.threads = [1, 2, 4] if args.full else [1]
    started = time.monotonic()
    if args.curves and not args.all:
        rows, meta = [], {"mode": "curves",
                          "provenance": lab_provenance.collect(args.bin, ROOT)}
    else:
        rows, meta = run_all(args)
    if args.curves or args.all:
        run_curves(args, rows, meta)
        # wall_s stays the cells' own time, beside their plan; total_s has the curves too.
        meta["total_s"] = round(time.monotonic() - started)
    report = write_report(rows, meta, args.out, write_charts)
    print(report)
    if args.compare:
        old = args.compare[0]
        lines = lab_compare.compare(lab_compare.read_rows(old), rows, old.name, "this run")
        with report.open("a") as f:
            f.write("\n" + "\n".join(lines) + "\n")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
