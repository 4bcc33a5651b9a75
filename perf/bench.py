#!/usr/bin/env python3
"""The perf lab: the three ringserve I/O models and nginx on the same work.

Every run pins the server to CPU 0 and the load generator to the other CPUs, and records
requests/s, latency p50/p99, the server's CPU time per request (user and system, from
/proc/PID/stat), its system calls per request (perf stat -e raw_syscalls:sys_enter, or strace -c
where perf is missing) and whether the server's own request count agrees with the client's.
The report is a Markdown table plus PNG charts (gnuplot) and a JSON file with every cell.

Its HTTPS part puts ringserve-http and nginx on the same certificate, TLS version and cipher
(see HTTPS_LOADS); --https-only runs that part alone (perf/tls_bench.py does).

Run it through scripts/bench.sh (quick by default, --full for the whole matrix).
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_probe import parse_metrics  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- the machine

def cpu_layout():
    n = os.cpu_count() or 1
    server = "0"
    load = f"1-{n - 1}" if n > 1 else "0"
    return server, load, max(1, n - 1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pids):
    total_user = total_sys = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total_user += int(fields[11])  # utime, field 14 of the whole line
        total_sys += int(fields[12])   # stime, field 15
    return total_user, total_sys


def raise_fd_limit():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------- servers

class Server:
    """A server under test, pinned to the server CPU. pids: the processes whose CPU counts."""

    def __init__(self, name, kind):
        self.name = name
        self.kind = kind  # "http" or "echo"
        self.tls = False  # serves https (see TlsSetup)
        self.proc = None
        self.port = None
        self.pids = []
        self.tmp = None

    def requests_served(self):
        return None

    stop_signal = signal.SIGTERM

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def end_process(proc):
    """SIGTERM, then the rest of its stdout (read to the end, which also keeps a full pipe from
    blocking its exit); killed after 15 s."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rest, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, _ = proc.communicate()
    return rest


class Ringserve(Server):
    def __init__(self, binary, backend, server_cpu, kind, label=None, extra_args=(), tls=None):
        super().__init__(label or backend, kind)
        self.binary = binary
        self.backend = backend
        self.server_cpu = server_cpu
        self.extra_args = list(extra_args) + (tls.ringserve_args() if tls else [])
        self.tls = tls is not None
        self.tls_counts = None

    def start(self):
        args = ["taskset", "-c", self.server_cpu, str(self.binary), "--port", "0",
                "--backend", self.backend, "--max-connections", "12000", "--grace-ms", "2000",
                *self.extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on \S+ port (\d+)", line)
            if m:
                self.port = int(m.group(1))
                # What the server says it set up (buffers, ring mode, batched wait).
                setup = re.search(r" (buffers=.*) allocator=", line)
                self.setup = setup.group(1) if setup else line.strip()
                ktls = re.search(r" ktls=(\S+(?: \([^)]*\))?)", line)
                self.ktls = ktls.group(1) if ktls else None
                self.pids = [self.proc.pid]
                return
        raise RuntimeError(f"{self.binary.name} --backend {self.backend} did not start: "
                           f"{self.proc.stderr.read() if self.proc.poll() is not None else ''}")

    def stop(self):
        # The counters line comes at exit.
        rest = end_process(self.proc)
        # Every transport counter of the run, from the counters line printed at exit.
        self.counters = {k: int(v) for k, v in re.findall(r" (\w+)=(\d+)", rest or "")}
        self.bytes_out = self.counters.get("bytes_out")

    def requests_served(self):
        if self.kind != "http":
            return None
        body = http_get(self.port, "/metrics", self.tls)
        m = parse_metrics(body or "")  # the per-loop series summed
        # Full and resumed handshakes, from the same answer (whose own handshake is counted).
        tls = [m.get(f"ringserve_tls_{k}_total") for k in ("handshakes", "resumed")]
        self.tls_counts = tls if self.tls and None not in tls else None
        return m.get("ringserve_http_requests_total")


class Floor(Server):
    """A floor responder (perf/floors): the least work its I/O model can do for plaintext. It
    answers every request end with ringserve's /plaintext bytes and prints its count at exit."""

    def __init__(self, binary, model, server_cpu):
        super().__init__(f"{model} floor", "http")
        self.binary = binary
        self.server_cpu = server_cpu

    def start(self):
        self.proc = subprocess.Popen(["taskset", "-c", self.server_cpu, str(self.binary)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on \S+ port (\d+)", line)
        if not m:
            raise RuntimeError(f"{self.binary.name} did not start: {self.proc.stderr.read()}")
        self.port = int(m.group(1))
        self.pids = [self.proc.pid]

    def stop(self):
        rest = end_process(self.proc)
        m = re.search(r"answered (\d+)", rest or "")
        self.answered = int(m.group(1)) if m else None
        if not self.answered:
            # The row then has no server count, so its count check fails in the report.
            log(f"{self.binary.name} answered nothing (exit {self.proc.returncode})")


NGINX_CONF = """
worker_processes 1;
worker_cpu_affinity {mask};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 16384; multi_accept off; }}
worker_rlimit_nofile 40000;
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    location = /plaintext {{ default_type text/plain; return 200 "Hello, World!"; }}
    location = /json {{ default_type application/json;
                        return 200 '{{"message":"Hello, World!"}}'; }}
    location = /nginx_status {{ stub_status; }}
  }}
}}
"""


# With https: what ringserve serves (TLS 1.3 pinned, one suite, its key exchange groups), and
# no resumption on either (see TlsSetup.ringserve_args).
NGINX_TLS = """  ssl_protocols TLSv1.3;
  ssl_conf_command Ciphersuites {suite};
  ssl_ecdh_curve X25519:prime256v1:secp384r1;
  ssl_certificate {cert};
  ssl_certificate_key {key};
  ssl_session_cache off;
  ssl_session_tickets off;
"""


class Nginx(Server):
    """nginx from a generated config in a temporary directory: one worker, pinned like ours."""

    def __init__(self, server_cpu, tls=None):
        super().__init__("nginx", "http")
        self.server_cpu = server_cpu
        self.tls_setup = tls
        self.tls = tls is not None

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="rs-nginx-")
        self.port = free_port()
        mask = "1" + "0" * int(self.server_cpu)  # CPU n as a bit mask
        conf = Path(self.tmp) / "nginx.conf"
        text = NGINX_CONF.format(tmp=self.tmp, port=self.port, mask=mask)
        if self.tls:
            t = self.tls_setup
            text = text.replace("  server {\n", NGINX_TLS.format(
                suite=HTTPS_SUITE, cert=t.cert, key=t.key) + "  server {\n").replace(
                    " reuseport backlog", " ssl reuseport backlog")
        conf.write_text(text)
        self.proc = subprocess.Popen(
            ["taskset", "-c", self.server_cpu, "nginx", "-c", str(conf), "-p", self.tmp,
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            if http_get(self.port, "/nginx_status", self.tls) is not None:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("nginx did not start: " + Path(self.tmp, "error.log").read_text())
        # The master only supervises; the worker serves. Both count.
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        self.pids = [self.proc.pid] + [int(c) for c in children]

    stop_signal = signal.SIGQUIT  # nginx's graceful stop

    def requests_served(self):
        body = http_get(self.port, "/nginx_status", self.tls)
        m = re.search(r"^\s*\d+\s+\d+\s+(\d+)\s*$", body or "", re.M)
        return int(m.group(1)) if m else None


def http_get(port, path, tls=False):
    """The body of GET path on its own connection (over TLS with tls), or None."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            s = raw
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                s = context.wrap_socket(raw)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ssl.SSLError:  # a close without close_notify ends the answer too
                    break
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n\r\n", 1)[1].decode(errors="replace")
    except (OSError, IndexError):
        return None


# ---------------------------------------------------------------------------- https

HTTPS_SUITE = "TLS_AES_128_GCM_SHA256"  # what both pick by default, pinned on both anyway

# (workload, connections, depth, a new connection per request, the key exchange group); a new
# connection per request is a full handshake per request: neither server resumes sessions.
HTTPS_LOADS = [("https plaintext c=64", 64, 1, False, "X25519"),
               ("https plaintext c=64 pipelined 16", 64, 16, False, "X25519"),
               ("https handshake X25519 c=16", 16, 1, True, "X25519"),
               ("https handshake P-256 c=16", 16, 1, True, "P-256")]
# Issue 13's targets against nginx in the same run: (figure, bound); CPU per request at most
# the bound times nginx's, handshakes (requests) per second at least the bound times nginx's.
HTTPS_TARGETS = {"https plaintext c=64": ("cpu_us", 0.95),
                 "https plaintext c=64 pipelined 16": ("cpu_us", 0.3),
                 "https handshake X25519 c=16": ("rps", 1.0),
                 "https handshake P-256 c=16": ("rps", 1.0)}
HTTPS_ROUNDS = 3
# Quick mode: one load on uring and nginx, for the plumbing (certificate, both servers' TLS,
# the client's group, the handshake count).
HTTPS_QUICK = (["https handshake P-256 c=16"], ("uring", "nginx"))


class TlsSetup:
    """The run's certificate (ECDSA P-256, made with openssl in the run's temporary directory)
    and the client's OpenSSL configurations.

    The client picks the key exchange: wrk cannot choose a group, but OpenSSL reads the file
    that OPENSSL_CONF names when wrk makes its context, and its system_default section there
    limits every handshake to TLS 1.3, HTTPS_SUITE and the one group given, so the client offers
    a key share for that group alone and both servers (which offer X25519, P-256 and P-384)
    take it without a retry."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.cert, self.key = self.tmp / "cert.pem", self.tmp / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(self.key), "-out",
                        str(self.cert), "-days", "2", "-subj", "/CN=localhost"],
                       check=True, capture_output=True)
        self.key.chmod(0o644)  # nginx's worker may run as another user

    def ringserve_args(self):
        # No session tickets, as nginx is told: wrk keeps a connection's session when it
        # reconnects (SSL_clear), so with tickets every other new connection would resume
        # instead of making the full handshake the handshake rows are for.
        return ["--tls-cert", str(self.cert), "--tls-key", str(self.key),
                "--tls-min-version", "1.3", "--tls-ciphersuites", HTTPS_SUITE,
                "--tls-ticket-rotate-s", "0"]

    def client_env(self, group):
        conf = self.tmp / f"client-{group}.cnf"
        conf.write_text("openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n"
                        "[ssl_sect]\nsystem_default = client\n[client]\n"
                        "MinProtocol = TLSv1.3\nMaxProtocol = TLSv1.3\n"
                        f"Ciphersuites = {HTTPS_SUITE}\nGroups = {group}\n")
        return {**os.environ, "OPENSSL_CONF": str(conf)}


# ---------------------------------------------------------------------------- load

def parse_duration_us(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[unit]


def wrk_load(port, path, connections, seconds, depth, threads, load_cpus, tmp, scheme="http",
             close=False, env=None):
    """wrk on path, depth requests at a time per connection; close: each request asks for
    Connection: close, so every request has a connection (over https, a handshake) of its own.
    env: wrk's environment (the client's OpenSSL configuration)."""
    script = Path(tmp) / f"pipeline{depth}{'-close' if close else ''}.lua"
    headers = ', {["Connection"] = "close"}' if close else ""
    script.write_text(
        "init = function(args)\n"
        "  local r = {}\n"
        f"  for i = 1, {depth} do r[i] = wrk.format(nil, \"{path}\"{headers}) end\n"
        "  req = table.concat(r)\n"
        "end\n"
        "request = function() return req end\n")
    threads = max(1, min(threads, connections))
    cmd = ["taskset", "-c", load_cpus, "wrk", f"-t{threads}", f"-c{connections}",
           f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", str(script),
           f"{scheme}://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                         env=env).stdout
    result = {"client": "wrk"}
    m = re.search(r"(\d+) requests in", out)
    result["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    result["rps"] = float(m.group(1)) if m else None
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
    result["raw"] = out
    return result


def echo_load(binary, port, connections, seconds, size, load_cpus):
    cmd = ["taskset", "-c", load_cpus, str(binary), "--port", str(port),
           "--connections", str(connections), "--size", str(size),
           "--duration-s", str(seconds), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"echo-load gave no result: {proc.stdout}{proc.stderr}")
    data = json.loads(line)
    return {"client": "echo-load", "requests": data.get("messages"),
            "rps": data.get("messages_per_s"), "echo_messages": data.get("total_messages"), "p50_us": data.get("latency_us_p50"),
            "p99_us": data.get("latency_us_p99"), "non_2xx": 0, "socket_errors": data.get("errors", 0),
            "raw": proc.stdout}


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
        time.sleep(0.2)  # attached before the load starts

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
    before_count = server.requests_served()
    tls0 = getattr(server, "tls_counts", None)
    u0, s0 = cpu_ticks(server.pids)
    counter = SyscallCounter(server.pids, server_cpu, tmp)
    result = run_load()
    syscalls = counter.stop()
    u1, s1 = cpu_ticks(server.pids)
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


# ---------------------------------------------------------------------------- the matrix

def matrix(full):
    """(workload name, kind, parameters), in report order."""
    if full:
        http = [("plaintext c=64", "/plaintext", 64, 1), ("plaintext c=256", "/plaintext", 256, 1),
                ("plaintext c=1024", "/plaintext", 1024, 1),
                ("plaintext c=256 pipelined 16", "/plaintext", 256, 16),
                ("json c=256", "/json", 256, 1),
                ("delay 100 ms c=10000", "/delay?ms=100", 10000, 1)]
        # The 64 KiB echo is a stream: what receive bundles, incremental buffers and SEND_ZC
        # are for.
        echo = [("echo 128 B c=64", 64, 128), ("echo 128 B c=512", 512, 128),
                ("echo 64 KiB c=16", 16, 65536)]
        seconds = 10
    else:
        http = [("plaintext c=64", "/plaintext", 64, 1),
                ("plaintext c=64 pipelined 16", "/plaintext", 64, 16),
                ("json c=64", "/json", 64, 1),
                ("delay 100 ms c=500", "/delay?ms=100", 500, 1)]
        echo = [("echo 128 B c=64", 64, 128)]
        seconds = 1
    return http, echo, seconds


# Ring tuning flags and the workloads each is measured on. The knobs of a workload run in
# rounds: a default uring run, then every knob, round after round, and each knob's figure is the
# median over rounds of its ratio to the default run of its own round, so the VM's drift from
# minute to minute cancels instead of landing on one knob.
KNOB_BASELINE = "uring knob baseline"
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
# The knobs' static-file workload: a 1 MiB file from --root (read into chunks, READ_FIXED with
# registered buffers); its runs, baseline included, serve a root made for them (and, with a
# root, no /metrics on the port: their rows carry no server count).
STATIC_KNOB = ("static 1 MiB c=16", "/1m.bin", 16, 1)
# Quick mode runs the newest flags once each, so a flag the server refuses fails the lab test.
QUICK_KNOBS = [(label, flags, ("echo 128 B c=64",)) for label, flags, _ in KNOBS[4:]]


def run_all(args):
    raise_fd_limit()
    server_cpu, load_cpus, load_threads = cpu_layout()
    http, echo, seconds = matrix(args.full)
    knobs = KNOBS if args.full else QUICK_KNOBS
    rounds = args.knob_rounds or (3 if args.full else 1)
    if args.seconds:
        seconds = args.seconds
    knob_seconds = args.seconds or min(seconds, 5)
    https_loads, https_servers = (HTTPS_LOADS, ("uring", "epoll", "nginx")) if args.full else (
        [load for load in HTTPS_LOADS if load[0] in HTTPS_QUICK[0]], HTTPS_QUICK[1])
    https_rounds = args.https_rounds or (HTTPS_ROUNDS if args.full else 1)
    if args.https_only:
        http, echo, knobs = [], [], []
    build = args.bin
    rows = []
    tmp = tempfile.mkdtemp(prefix="rs-bench-")
    try:
        def run(server, name, conns, depth, load, extra=None):
            """Starts the server, measures load(server) on it, stops it, records the row."""
            server.start()
            try:
                log(f"{name:32} {server.name:8}")
                r = measure(server, lambda: load(server), server_cpu, tmp)
            finally:
                server.stop()
            rows.append({"workload": name, "server": server.name, "connections": conns,
                         "depth": depth, "setup": getattr(server, "setup", None), **r,
                         **(extra or {})})
            if getattr(server, "answered", None) is not None:
                rows[-1]["server_requests"] = server.answered  # a floor counts until it exits
            counters = getattr(server, "counters", {})
            if counters.get("recv_completions"):
                # Bytes per receive completion: what bundles and buffer sizes change.
                rows[-1]["bytes_per_recv"] = counters["bytes_in"] / counters["recv_completions"]
            log(f"  {fmt_row(rows[-1])}")
            return rows[-1]

        def run_http(server, name, path, conns, depth, secs=None, extra=None):
            run(server, name, conns, depth,
                lambda s: wrk_load(s.port, path, conns, secs or seconds, depth, load_threads,
                                   load_cpus, tmp), extra)

        def run_echo(server, name, conns, size, secs=None, extra=None):
            row = run(server, name, conns, 1,
                      lambda s: echo_load(build / "echo-load", s.port, conns, secs or seconds,
                                          size, load_cpus), extra)
            # The echo server counts bytes, not messages: it must have echoed exactly every
            # message the client sent (warm-up and the drain at the end included). Its byte
            # count comes at exit, after the row was made.
            if server.bytes_out is not None and row.get("echo_messages") is not None:
                row["server_requests"] = server.bytes_out // size
                row["requests_checked"] = row["echo_messages"]

        http_servers = [lambda b=b: Ringserve(build / "ringserve-http", b, server_cpu, "http")
                        for b in ("uring", "epoll", "threads")]
        http_servers.append(lambda: Nginx(server_cpu))
        # The floors run beside the backends on plaintext, the load they are built for.
        floors = [lambda m=m: Floor(build / f"floor-{m}", m, server_cpu)
                  for m in ("uring", "epoll") if (build / f"floor-{m}").exists() and http]
        # Workload by workload, every server in turn: drift over the run hits each alike.
        for name, path, conns, depth in http:
            for make in http_servers + (floors if path == "/plaintext" else []):
                server = make()
                if server.name == "nginx" and path.startswith("/delay"):
                    continue  # nginx has no delayed answer without a third-party module
                run_http(server, name, path, conns, depth)
        # The floor bounds are tight (8% at depth 1), so in --full they are judged on rounds:
        # each backend, its floor and nginx back to back, in a rotating order, and the ratio
        # taken within each round (drift cancels), the median over rounds.
        if args.full and floors:
            makers = [http_servers[0], floors[0], http_servers[1]] + floors[1:] + [http_servers[3]]
            for round_no in range(FLOOR_ROUNDS):
                for name, path, conns, depth in FLOOR_LOADS:
                    shift = round_no % len(makers)
                    for make in makers[shift:] + makers[:shift]:
                        run_http(make(), name, path, conns, depth, knob_seconds,
                                 {"floor_round": round_no})
        # HTTPS beside nginx (HTTPS_LOADS), on one certificate made for the run. With --full,
        # in rounds like the floors: every load on each server back to back, in an order that
        # rotates from round to round; the HTTPS table takes the medians.
        if https_loads:
            tls = TlsSetup(tmp)
            makers = {"nginx": lambda: Nginx(server_cpu, tls)}
            makers.update({b: lambda b=b: Ringserve(build / "ringserve-http", b, server_cpu,
                                                    "http", tls=tls) for b in ("uring", "epoll")})
            for round_no in range(https_rounds):
                for name, conns, depth, close, group in https_loads:
                    shift = round_no % len(https_servers)
                    for label in https_servers[shift:] + https_servers[:shift]:
                        extra = {"group": group, "new_connection": close,
                                 "tls": f"TLS 1.3 {HTTPS_SUITE}"}
                        if args.full:
                            extra["https_round"] = round_no
                        server = makers[label]()
                        run(server, name, conns, depth,
                            lambda s, c=conns, d=depth, close=close, group=group: wrk_load(
                                s.port, "/plaintext", c, knob_seconds, d, load_threads,
                                load_cpus, tmp, "https", close, tls.client_env(group)), extra)
                        rows[-1]["ktls"] = getattr(server, "ktls", None)
        has_echo = (build / "echo-load").exists()
        if has_echo:
            for backend in ("uring", "epoll", "threads"):
                for name, conns, size in echo:
                    run_echo(Ringserve(build / "ringserve-echo", backend, server_cpu, "echo"),
                             name, conns, size)
        else:
            log("echo-load is not built: echo workloads skipped")
        # The knobs, in rounds per workload (see KNOBS).
        workloads = {name: ("http", path, conns, depth) for name, path, conns, depth in http}
        workloads.update({name: ("echo", conns, size) for name, conns, size in echo})
        static_root = Path(tmp) / "root"
        if args.full:
            static_root.mkdir()
            (static_root / STATIC_KNOB[1].lstrip("/")).write_bytes(os.urandom(1 << 20))
            workloads[STATIC_KNOB[0]] = ("http", *STATIC_KNOB[1:])
        for workload, spec in workloads.items():
            mine = [(label, flags) for label, flags, on in knobs if workload in on]
            if not mine or (spec[0] == "echo" and not has_echo):
                continue
            for round_no in range(rounds):
                # The baseline opens and closes every round (a knob is compared with their
                # mean, which cancels a steady drift across the round); the knobs rotate.
                shift = round_no % len(mine)
                order = [(KNOB_BASELINE, [])] + mine[shift:] + mine[:shift] + [(KNOB_BASELINE, [])]
                for label, flags in order:
                    binary = build / ("ringserve-http" if spec[0] == "http" else "ringserve-echo")
                    if workload == STATIC_KNOB[0]:
                        flags = [*flags, "--root", str(static_root)]
                    server = Ringserve(binary, "uring", server_cpu, spec[0], label, flags)
                    extra = {"round": round_no}
                    if spec[0] == "http":
                        run_http(server, workload, spec[1], spec[2], spec[3], knob_seconds, extra)
                    else:
                        run_echo(server, workload, spec[1], spec[2], knob_seconds, extra)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    knob_flags = {KNOB_BASELINE: "(defaults)"}
    knob_flags.update({label: " ".join(flags) for label, flags, _ in knobs})
    # What the knob table must hold: every knob on each of its workloads, and their baselines.
    plan = {label: [w for w in on if w in workloads] for label, _, on in knobs}
    plan[KNOB_BASELINE] = sorted({w for ws in plan.values() for w in ws})
    return rows, {"server_cpu": server_cpu, "load_cpus": load_cpus, "seconds": seconds,
                  "knob_seconds": knob_seconds, "knob_rounds": rounds, "knobs": knob_flags,
                  "knob_plan": plan, "https_seconds": knob_seconds,
                  "https_rounds": https_rounds if https_loads else 0}


def log(text):
    print(text, file=sys.stderr, flush=True)


def num(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def fmt_row(r):
    return (f"rps={num(r.get('rps'), 0)} p50={num(r.get('p50_us'), 0)}us "
            f"p99={num(r.get('p99_us'), 0)}us cpu/req={num(r.get('cpu_us'), 2)}us "
            f"syscalls/req={num(r.get('syscalls_per_req'), 3)} "
            f"client={r.get('requests')} server={r.get('server_requests')}")


# ---------------------------------------------------------------------------- the report

COLUMNS = [("req/s", "rps", 0), ("p50 µs", "p50_us", 0), ("p99 µs", "p99_us", 0),
           ("CPU µs/req", "cpu_us", 2), ("user", "cpu_user_us", 2), ("sys", "cpu_sys_us", 2),
           ("syscalls/req", "syscalls_per_req", 3)]


def count_check(r):
    """ok when the server answered what the client counted, plus at most what was still in
    flight when the client stopped counting (one batch per connection)."""
    client, server = r.get("requests_checked", r.get("requests")), r.get("server_requests")
    if server is None or client is None:
        return "n/a"
    in_flight = r.get("connections", 0) * r.get("depth", 1)
    return "ok" if 0 <= server - client <= in_flight else f"server {server}, client {client}"


def ratio(rows, workload, a, b, key):
    ra = next((r for r in rows if r["workload"] == workload and r["server"] == a), None)
    rb = next((r for r in rows if r["workload"] == workload and r["server"] == b), None)
    if not ra or not rb or not ra.get(key) or not rb.get(key):
        return None
    return ra[key] / rb[key]


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def knob_summary(knob_rows):
    """One line per (knob, workload): medians over rounds, ratios to the same round's baseline."""
    out = []
    keys = list(dict.fromkeys((r["workload"], r["server"]) for r in knob_rows))
    keys.sort(key=lambda k: (k[0], k[1] != KNOB_BASELINE))
    for workload, server in keys:
        runs = [r for r in knob_rows if r["workload"] == workload and r["server"] == server]
        cpu_ratios, rps_ratios = [], []
        for r in runs:
            bases = [b for b in knob_rows if b["workload"] == workload and
                     b["server"] == KNOB_BASELINE and b.get("round") == r.get("round")]
            for key, ratios in (("cpu_us", cpu_ratios), ("rps", rps_ratios)):
                level = [b[key] for b in bases if b.get(key)]
                if level and r.get(key):
                    ratios.append(r[key] / (sum(level) / len(level)))
        out.append({"workload": workload, "server": server,
                    "cpu_us": median(r.get("cpu_us") for r in runs),
                    "cpu_ratio": median(cpu_ratios), "rps_ratio": median(rps_ratios),
                    "syscalls_per_req": median(r.get("syscalls_per_req") for r in runs),
                    "bytes_per_recv": median(r.get("bytes_per_recv") for r in runs),
                    "setup": runs[0].get("setup")})
    return out


def write_report(rows, meta, out_dir, full):
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d")
    host = socket.gethostname()
    base = out_dir / f"{stamp}-{host}"
    n = 2
    while base.with_suffix(".md").exists():  # another run today: keep it
        base = out_dir / f"{stamp}-{host}-run{n}"
        n += 1
    for r in rows:
        r["count"] = count_check(r)
        r["errors"] = (r.get("non_2xx") or 0) + (r.get("socket_errors") or 0)
    (base.with_suffix(".json")).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# ringserve perf lab: {stamp} on {host}", "",
             f"Mode: {'full' if full else 'quick'}, {meta['seconds']} s per run. Server on CPU "
             f"{meta['server_cpu']}, load on CPUs {meta['load_cpus']} ({os.cpu_count()} CPUs, "
             f"kernel {os.uname().release}). CPU per request from /proc/PID/stat (user+system), "
             "system calls per request from `perf stat -e raw_syscalls:sys_enter` on the server, "
             "`count` compares the server's own request count with the client's.", "",
             "| workload | server | " + " | ".join(c[0] for c in COLUMNS) + " | errors | count |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|---|"]
    knob_labels = meta.get("knobs", {})
    knob_rows = [r for r in rows if r["server"] in knob_labels]
    main_rows = [r for r in rows if r["server"] not in knob_labels and "floor_round" not in r
                 and "https_round" not in r]
    for r in main_rows:
        cells = [num(r.get(key), d) for _, key, d in COLUMNS]
        lines.append(f"| {r['workload']} | {r['server']} | " + " | ".join(cells) +
                     f" | {r['errors']} | {r['count']} |")
    if not main_rows:
        lines[-2:] = ["No single runs: every run was in rounds (below)."]
    if any(r.get("latency_note") for r in main_rows):
        lines += ["", "Pipelined rows have no latency: wrk times a pipelined batch as one request "
                  "but counts every response, so its percentiles are meaningless there."]
    if full is False:
        lines += ["", "Quick mode: one-second runs to check that the lab works; use --full for "
                  "numbers worth quoting."]
    ratio_lines = []
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    for w in workloads:
        if w in HTTPS_TARGETS:
            continue  # in the HTTPS section, against its targets
        parts = []
        for other in ("nginx", "epoll", "threads"):
            cpu = ratio(rows, w, "uring", other, "cpu_us")
            rps = ratio(rows, w, "uring", other, "rps")
            if cpu is not None:
                parts.append(f"CPU/req uring/{other} = {cpu:.2f}, req/s uring/{other} = "
                             f"{rps:.2f}" if rps else f"CPU/req uring/{other} = {cpu:.2f}")
        if parts:
            ratio_lines.append(f"- {w}: " + "; ".join(parts))
    if ratio_lines:
        lines += ["", "## Ratios", ""] + ratio_lines
    lines += floor_lines(rows)
    lines += https_lines(rows, meta)
    if knob_rows:
        lines += ["", "## Ring knobs", "",
                  f"Each flag on its own, in {meta.get('knob_rounds', 1)} round(s) of "
                  f"{meta.get('knob_seconds', meta['seconds'])} s runs per workload: a default "
                  "uring run, every flag (in a rotating order), a default run again. `vs "
                  "baseline` is the median over rounds of the ratio to the mean of the two "
                  "default runs of the same round (below 1: the flag saves CPU per request); "
                  "the other figures are medians. `in force` is what the server reported "
                  "setting up, so a flag the kernel cannot honour shows as such.", "",
                  "| knob | flags | workload | CPU µs/req | vs baseline | syscalls/req | "
                  "req/s vs baseline | bytes/recv | in force |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in knob_summary(knob_rows):
            lines.append(f"| {r['server']} | `{knob_labels[r['server']]}` | {r['workload']} | "
                         f"{num(r['cpu_us'], 2)} | {num(r['cpu_ratio'], 2)} | "
                         f"{num(r['syscalls_per_req'], 3)} | {num(r['rps_ratio'], 2)} | "
                         f"{num(r['bytes_per_recv'], 0)} | "
                         f"{(r['setup'] or '-').replace('|', '&#124;')} |")
    charts = write_charts(main_rows, base) if main_rows else []
    if charts:
        lines += ["", "## Charts", ""] + [f"![{c.stem}]({c.name})" for c in charts]
    report = base.with_suffix(".md")
    report.write_text("\n".join(lines) + "\n")
    return report


# Issue 11's bounds on CPU per request: each backend against its model's floor, by depth, and
# against nginx with pipelining.
FLOOR_BOUND = {1: 1.08, 16: 1.3}
NGINX_BOUND_PIPELINED = 0.10
FLOOR_ROUNDS = 5
FLOOR_LOADS = [("plaintext c=256", "/plaintext", 256, 1),
               ("plaintext c=256 pipelined 16", "/plaintext", 256, 16)]


def round_ratio(rows, workload, a, b, key):
    """The median over floor rounds of a/b within each round; None without rounds."""
    ratios = []
    for n in sorted({r["floor_round"] for r in rows if "floor_round" in r}):
        in_round = [r for r in rows if r.get("floor_round") == n]
        value = ratio(in_round, workload, a, b, key)
        if value is not None:
            ratios.append(value)
    return median(ratios)


def floor_lines(rows):
    """How far each event-loop backend is from the floor of its model, per plaintext load: from
    the floor rounds where there are some, else from the single runs of the matrix."""
    out = []
    rounds = len({r["floor_round"] for r in rows if "floor_round" in r})
    single = [r for r in rows if "floor_round" not in r]
    for w in dict.fromkeys(r["workload"] for r in rows if r["server"].endswith(" floor")):
        depth = next(r["depth"] for r in rows if r["workload"] == w)
        judged = rounds and any(r.get("floor_round") is not None and r["workload"] == w
                                for r in rows)

        def rel(a, b, workload=w, judged=judged):
            return (round_ratio(rows, workload, a, b, "cpu_us") if judged
                    else ratio(single, workload, a, b, "cpu_us"))

        for model in ("uring", "epoll"):
            parts = []
            floor = rel(model, f"{model} floor")
            if floor is not None:
                bound = FLOOR_BOUND.get(depth)
                verdict = "" if bound is None else (
                    f" (bound {bound}: {'met' if floor <= bound else 'missed'})")
                parts.append(f"CPU/req {model}/{model} floor = {floor:.2f}{verdict}")
            nginx = rel(model, "nginx")
            if nginx is not None and depth > 1:
                verdict = "met" if nginx <= NGINX_BOUND_PIPELINED else "missed"
                parts.append(f"{model}/nginx = {nginx:.2f} (bound {NGINX_BOUND_PIPELINED}: "
                             f"{verdict})")
            if parts:
                source = f"median of {rounds} rounds" if judged else "one run"
                out.append(f"- {w} ({source}): " + "; ".join(parts))
    if out:
        out = ["", "## Floors", "",
               "Each event-loop backend against the least work its I/O model can do "
               "(perf/floors: a canned answer per request end, one send per connection per "
               "turn, no parsing), in the same run. With --full, the bounded loads also run in "
               "rounds (each backend, its floor and nginx back to back in a rotating order), "
               "and a ratio is the median over rounds of the ratio within each."] + [""] + out
    return out


def https_ratio(rows, workload, server, key):
    """server/nginx on key for workload: the median over HTTPS rounds of the ratio within each
    round (the one run's ratio without rounds)."""
    rounds = dict.fromkeys(r.get("https_round") for r in rows if r["workload"] == workload)
    return median(ratio([r for r in rows if r.get("https_round") == n], workload, server,
                        "nginx", key) for n in rounds)


def https_lines(rows, meta):
    """The HTTPS table: medians over rounds, each ringserve backend against nginx and its target."""
    https = [r for r in rows if r["workload"] in HTTPS_TARGETS]
    if not https:
        return []
    rounds = meta.get("https_rounds", 1)
    seconds = meta.get("https_seconds", meta["seconds"])
    how = (f"Medians of {rounds} rounds of {seconds} s runs: in each, every load on each server "
           "back to back, in an order that rotates from round to round, and a ratio is the "
           "median over rounds of the ratio within each round."
           if any("https_round" in r for r in https) else f"One {seconds} s run per cell.")
    ktls = sorted({r["ktls"] for r in https if r.get("ktls")})
    out = ["", "## HTTPS", "",
           "ringserve-http and nginx (one worker) with the same ECDSA P-256 certificate, made "
           f"for the run, and TLS 1.3 with {HTTPS_SUITE} pinned on both servers and on the "
           "client, no session resumption on either (`--tls-ticket-rotate-s 0`; "
           "`ssl_session_cache off`, `ssl_session_tickets off`), wrk over https. The client "
           "picks the key exchange: wrk "
           "runs with an OpenSSL configuration (`OPENSSL_CONF`) that offers the row's one group "
           "(X25519 on the kept connections), where both servers offer X25519, P-256 and P-384. "
           "The handshake rows ask for `Connection: close`: every request is a new connection "
           "and a full handshake (`full hs/req` is ringserve's own count; resumed handshakes "
           f"are not in it, and `checks` names any). {how} Targets (issue 13): CPU per request "
           "at most 0.95x nginx's at depth 1 and 0.3x at depth 16, handshakes per second at "
           "least nginx's. ringserve's kTLS: " + (", ".join(ktls) or "not reported") + ".", "",
           "| workload | server | req/s | CPU µs/req | user | sys | syscalls/req | full hs/req | "
           "CPU/req vs nginx | req/s vs nginx | target | checks |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in dict.fromkeys(r["workload"] for r in https):
        for server in dict.fromkeys(r["server"] for r in https if r["workload"] == w):
            runs = [r for r in https if r["workload"] == w and r["server"] == server]
            cells = [num(median(r.get(key) for r in runs), d) for key, d in (
                ("rps", 0), ("cpu_us", 2), ("cpu_user_us", 2), ("cpu_sys_us", 2),
                ("syscalls_per_req", 3), ("full_handshakes_per_req", 3))]
            cpu = rps = None
            target = "-"
            if server != "nginx":
                cpu, rps = (https_ratio(https, w, server, key) for key in ("cpu_us", "rps"))
                key, bound = HTTPS_TARGETS[w]
                value = cpu if key == "cpu_us" else rps
                if value is not None:
                    met = value <= bound if key == "cpu_us" else value >= bound
                    target = (f"{'CPU/req ≤' if key == 'cpu_us' else 'req/s ≥'} {bound}x: "
                              f"{'met' if met else 'missed'}")
            problems = [f"{r['errors']} errors" for r in runs if r["errors"]]
            problems += [f"count: {r['count']}" for r in runs if r["count"] != "ok"]
            problems += [f"{r['resumed_per_req']:.3f} resumed/req" for r in runs
                         if r.get("resumed_per_req")]
            row = [w, server] + cells + [num(cpu, 2), num(rps, 2), target,
                                           "; ".join(problems) or "ok"]
            out.append("| " + " | ".join(row) + " |")
    return out


def write_charts(rows, base):
    if not shutil.which("gnuplot"):
        return []
    servers = list(dict.fromkeys(r["server"] for r in rows))
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    charts = []
    for key, title, suffix in (("rps", "requests per second", "rps"),
                               ("cpu_us", "server CPU microseconds per request", "cpu"),
                               ("syscalls_per_req", "system calls per request", "syscalls")):
        dat = base.parent / f"{base.name}-{suffix}.dat"
        with dat.open("w") as f:
            f.write("workload " + " ".join(servers) + "\n")
            for w in workloads:
                values = []
                for s in servers:
                    r = next((r for r in rows if r["workload"] == w and r["server"] == s), None)
                    v = r.get(key) if r else None
                    values.append("-" if v is None else f"{v:.4f}")
                f.write('"' + w + '" ' + " ".join(values) + "\n")
        png = base.parent / f"{base.name}-{suffix}.png"
        script = (f"set terminal png size 1000,520\nset output '{png}'\n"
                  f"set title '{title}'\nset style data histogram\n"
                  "set style histogram cluster gap 1\nset style fill solid 0.8 border -1\n"
                  "set datafile missing '-'\nset key top right\nset xtics rotate by -25\n"
                  "set yrange [0:*]\n"
                  f"plot for [i=2:{len(servers) + 1}] '{dat}' using i:xtic(1) title columnhead(i)\n")
        result = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        dat.unlink()
        if result.returncode == 0 and png.exists():
            charts.append(png)
        else:
            log(f"gnuplot: {result.stderr.strip()}")
    return charts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the whole matrix (minutes)")
    parser.add_argument("--seconds", type=int, help="seconds per run (default 1 quick, 10 full)")
    parser.add_argument("--knob-rounds", type=int,
                        help="rounds of the ring knob runs (default 1 quick, 3 full)")
    parser.add_argument("--https-rounds", type=int,
                        help=f"rounds of the HTTPS runs (default 1 quick, {HTTPS_ROUNDS} full)")
    parser.add_argument("--https-only", action="store_true",
                        help="only the HTTPS part (quick: one load on uring and nginx)")
    parser.add_argument("--bin", type=Path, default=ROOT / "build" / "bin",
                        help="the built binaries (release build)")
    parser.add_argument("--out", type=Path, default=ROOT / "perf" / "results",
                        help="where the report, JSON and charts go")
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "taskset", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing; run scripts/setup.sh --lab")
    rows, meta = run_all(args)
    report = write_report(rows, meta, args.out, args.full)
    print(report)


if __name__ == "__main__":
    main()
