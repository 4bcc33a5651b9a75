"""The perf lab's servers under test (ringserve-http and -echo on each backend, nginx from a
generated config, the floor responders) and the machine facts they are measured by: which CPUs
serve and which load, CPU ticks, RSS and disk reads per process. Imported by perf/bench.py (which
re-exports every name here) and by the scripts that drive servers the way the lab does; it does
no work at import time."""

import os
import re
import select
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
from server_probe import metrics_port, parse_metrics, vm_rss_kib  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
START_BOUND_S = 15  # a server that has not said where it listens by then did not start


def log(text):
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- the machine

def cpu_layout(server_cores=1):
    """(server CPUs, load CPUs, load threads) in taskset's syntax: the server on the first
    server_cores of the CPUs this process may use (its affinity, not the machine's count: a
    container or taskset may allow fewer, or others than 0..n-1), the load on the rest (on a
    single CPU both share it)."""
    cpus = sorted(os.sched_getaffinity(0))
    server, load = cpus[:server_cores], cpus[server_cores:] or cpus[:1]
    return ",".join(map(str, server)), ",".join(map(str, load)), max(1, len(load))


def parse_cpus(text):
    """taskset's CPU list ("0", "0-3", "0,2-3") as a list of CPU numbers."""
    cpus = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus += range(int(first), int(last or first) + 1)
    return cpus


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


def disk_read_bytes(pids):
    """Bytes the processes made the kernel fetch from storage (read_bytes of /proc/PID/io): what
    shows that a cold-cache run really went to the disk, where page-cache hits count nothing."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/io").read_text()
        except OSError:
            continue
        m = re.search(r"^read_bytes: (\d+)", text, re.M)
        total += int(m.group(1)) if m else 0
    return total


def rss_kib(pids):
    """VmRSS summed over the processes (nginx: master and workers)."""
    return sum(vm_rss_kib(pid) for pid in pids)


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


def start_line(proc, what):
    """The server's first line on stdout, which names its port; RuntimeError with what it wrote
    on stderr when none comes within START_BOUND_S (a server that hangs must not hang the lab)."""
    ready, _, _ = select.select([proc.stdout], [], [], START_BOUND_S)
    line = proc.stdout.readline() if ready else ""
    if not re.search(r" port \d+", line):
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(f"{what} did not start: {line.strip() or 'no start-up line'} "
                           f"{(err or '').strip()}".strip())
    return line


class Ringserve(Server):
    """ringserve-http or -echo on one backend. root: serve static files from there (the demo
    routes go off, so /metrics moves to a metrics listener of its own); access_log: a file for
    its access log."""

    def __init__(self, binary, backend, server_cpu, kind, label=None, extra_args=(), tls=None,
                 root=None, access_log=None):
        super().__init__(label or backend, kind)
        self.binary = binary
        self.backend = backend
        self.server_cpu = server_cpu
        self.extra_args = list(extra_args) + (tls.ringserve_args() if tls else [])
        if root:
            self.extra_args += ["--root", str(root), "--metrics-listen", "127.0.0.1:0"]
        if access_log:
            self.extra_args += ["--access-log", str(access_log)]
        self.access_log = access_log
        self.tls = tls is not None
        self.tls_counts = None
        self.metrics_port = None
        self.counters = {}
        self.bytes_out = None

    def start(self):
        args = ["taskset", "-c", self.server_cpu, str(self.binary), "--port", "0",
                "--backend", self.backend, "--max-connections", "12000", "--grace-ms", "2000",
                *self.extra_args]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = start_line(self.proc, f"{self.binary.name} --backend {self.backend}")
        self.port = int(re.search(r"listening on \S+ port (\d+)", line).group(1))
        if "--metrics-listen" in self.extra_args:
            self.metrics_port = metrics_port(line)
        # What the server says it set up (buffers, ring mode, batched wait).
        setup = re.search(r" (buffers=.*) allocator=", line)
        self.setup = setup.group(1) if setup else line.strip()
        ktls = re.search(r" ktls=(\S+(?: \([^)]*\))?)", line)
        self.ktls = ktls.group(1) if ktls else None
        self.pids = [self.proc.pid]

    def stop(self):
        # The counters line comes at exit.
        rest = end_process(self.proc)
        # Every transport counter of the run, from the counters line printed at exit.
        self.counters = {k: int(v) for k, v in re.findall(r" (\w+)=(\d+)", rest or "")}
        self.bytes_out = self.counters.get("bytes_out")

    def requests_served(self):
        if self.kind != "http":
            return None
        body = http_get(self.metrics_port or self.port, "/metrics", self.tls)
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
        self.answered = None

    def start(self):
        self.proc = subprocess.Popen(["taskset", "-c", self.server_cpu, str(self.binary)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = start_line(self.proc, self.binary.name)
        self.port = int(re.search(r"listening on \S+ port (\d+)", line).group(1))
        self.pids = [self.proc.pid]

    def stop(self):
        rest = end_process(self.proc)
        m = re.search(r"answered (\d+)", rest or "")
        self.answered = int(m.group(1)) if m else None
        if not self.answered:
            # The row then has no server count, so its count check fails in the report.
            log(f"{self.binary.name} answered nothing (exit {self.proc.returncode})")


NGINX_CONF = """
worker_processes {workers};
worker_cpu_affinity {masks};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 16384; multi_accept off; }}
worker_rlimit_nofile 40000;
http {{
  access_log {access_log};
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
{static}  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    location = /plaintext {{ default_type text/plain; return 200 "Hello, World!"; }}
    location = /json {{ default_type application/json;
                        return 200 '{{"message":"Hello, World!"}}'; }}
    location = /nginx_status {{ stub_status; }}
{root}  }}
}}
"""

# With a static root: what nginx is told beyond its defaults (open_file_cache stays off, as
# ringserve opens every file per request too; sendfile_max_chunk keeps its default, 2m).
NGINX_STATIC = """  sendfile on;
  default_type application/octet-stream;
"""

# With an access log: the predefined combined format, written in 64 KiB batches (at the latest
# a second after a line) where ringserve writes each loop turn's lines together.
NGINX_ACCESS_LOG = "{path} combined buffer=64k flush=1s"

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
    """nginx from a generated config in a temporary directory: one worker per server CPU, each
    pinned to its own. root: static files from there (NGINX_STATIC); access_log: its file."""

    def __init__(self, server_cpu, tls=None, root=None, access_log=None):
        super().__init__("nginx", "http")
        self.server_cpu = server_cpu
        self.tls_setup = tls
        self.tls = tls is not None
        self.root = root
        self.access_log = access_log

    def config(self):
        """The nginx.conf text for this server."""
        cpus = parse_cpus(self.server_cpu)
        static = NGINX_STATIC if self.root else ""
        if self.tls:
            t = self.tls_setup
            static += NGINX_TLS.format(suite=HTTPS_SUITE, cert=t.cert, key=t.key)
        text = NGINX_CONF.format(
            tmp=self.tmp, port=self.port, workers=len(cpus),
            masks=" ".join("1" + "0" * cpu for cpu in cpus),  # CPU n as a bit mask
            access_log=NGINX_ACCESS_LOG.format(path=self.access_log) if self.access_log
            else "off", static=static,
            root=f"    location / {{ root {self.root}; }}\n" if self.root else "")
        return text.replace(" reuseport backlog", " ssl reuseport backlog") if self.tls else text

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="rs-nginx-")
        self.port = free_port()
        conf = Path(self.tmp) / "nginx.conf"
        conf.write_text(self.config())
        self.proc = subprocess.Popen(
            ["taskset", "-c", self.server_cpu, "nginx", "-c", str(conf), "-p", self.tmp,
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        workers = len(parse_cpus(self.server_cpu))
        deadline = time.time() + START_BOUND_S
        # Up when it answers and every worker is there. The master only supervises; the
        # workers serve. All count.
        while time.time() < deadline and self.proc.poll() is None:
            children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                      text=True).stdout.split()
            if len(children) >= workers and http_get(self.port, "/nginx_status",
                                                     self.tls) is not None:
                break
            time.sleep(0.05)
        else:
            log_text = Path(self.tmp, "error.log")
            raise RuntimeError("nginx did not start: " + (
                log_text.read_text() if log_text.exists() else "no error log"))
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
