"""What the lab's memory scripts, the soak and the many-connections test ask a running
ringserve-http: its start, VmRSS, descriptors and CPU time, /metrics on a kept connection, and
whole responses read and checked. Imported, not run."""
import os
import re
import resource
import select
import subprocess
import tempfile
import time


# What check() found wrong, in the order found: a script's exit status is 1 when it holds any.
failures = []


def check(what, condition, detail=""):
    """Prints "ok   what" or "FAIL what: detail"; a failure is kept in `failures`."""
    print(("ok   " if condition else "FAIL ") + what + (f": {detail}" if detail else ""),
          flush=True)
    if not condition:
        failures.append(what)


def summary():
    """The last line of a checking script, and its exit status."""
    print("all checks passed" if not failures else f"{len(failures)} checks failed")
    return 1 if failures else 0


def raise_nofile():
    """The soft open-file limit raised to the hard one, which it returns."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_response(sock):
    """One whole response (Content-Length framed) from a blocking socket: (status, body)."""
    got = b""
    while True:
        head, sep, rest = got.partition(b"\r\n\r\n")
        if sep:
            length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
            if len(rest) >= length:
                return int(head.split(b" ", 2)[1]), rest[:length]
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the answer ended")
        got += chunk


# Labels that parse_metrics sums over: the loop of a per-loop series, and the status code within
# a class of ringserve_http_responses_total.
FOLDED_LABELS = ("loop", "status")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text as {series: value}: the name with the labels other than FOLDED_LABELS
    ('ringserve_connections_open', 'ringserve_http_responses_total{class="2xx"}'), summed over
    those. Whole numbers are ints."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, brace, labels = series.partition("{")
        if brace:
            kept = [f'{k}="{v}"' for k, v in LABEL.findall(labels) if k not in FOLDED_LABELS]
            series = name + ("{" + ",".join(kept) + "}" if kept else "")
        number = float(value)
        values[series] = values.get(series, 0) + (int(number) if number.is_integer() else number)
    return values


def metrics(sock):
    """GET /metrics on a kept connection, read with parse_metrics."""
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    status, body = read_response(sock)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return parse_metrics(body.decode())


class ServerDidNotStart(RuntimeError):
    pass


def start_server(binary, args, log=None, bound_s=30):
    """Starts ringserve-http on a free port: (process, port, start-up line). Its standard error
    goes to `log` (a temporary file by default). Raises ServerDidNotStart, with what the server
    wrote there, when no start-up line comes within bound_s."""
    log = log if log is not None else tempfile.TemporaryFile(mode="w+")
    server = subprocess.Popen([binary, "--port", "0", *args], stdout=subprocess.PIPE, stderr=log,
                              text=True)
    ready, _, _ = select.select([server.stdout], [], [], bound_s)
    line = server.stdout.readline() if ready else f"(nothing within {bound_s} s)"
    match = re.search(r" port (\d+)", line)
    if not match:
        server.kill()
        server.wait()
        log.seek(0)
        raise ServerDidNotStart(f"no start-up line: {line!r} {log.read()}".strip())
    return server, int(match.group(1)), line.strip()


def metrics_port(line):
    """The port of the first metrics listener in a start-up line ("127.0.0.1 port N metrics" or
    "... port N tls metrics"); raises ValueError when there is none."""
    match = re.search(r" port (\d+)(?: tls)? metrics", line)
    if not match:
        raise ValueError(f"no metrics listener in {line!r}")
    return int(match.group(1))


def fd_count(pid):
    """Descriptors the process has open now."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(what, probe, done, bound_s=30, interval_s=0.05):
    """Polls probe() until done(value); returns the value, or raises TimeoutError naming `what`
    and the last value after bound_s."""
    deadline = time.monotonic() + bound_s
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {bound_s} s waiting for {what}: last {value}")
        time.sleep(interval_s)


class BadResponse(Exception):
    """A response that breaks HTTP/1.1 framing or syntax."""


class PeerClosed(BadResponse):
    """The connection ended (EOF) where a response or more of one was expected."""


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # [(lower-case name, value)], in order
        self.body = body

    def header(self, name):
        """The one value of a header, or None; a repeated one is an error."""
        values = [v for n, v in self.headers if n == name]
        if len(values) > 1:
            raise BadResponse(f"{name} repeated: {values}")
        return values[0] if values else None

    def closes(self):
        value = self.header("connection") or ""
        return "close" in [t.strip().lower() for t in value.split(",")]

    def __repr__(self):
        body = self.body if len(self.body) <= 80 else self.body[:80] + b"..."
        return f"<{self.status} {self.reason} {dict(self.headers)} {len(self.body)} B {body!r}>"


_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) ([^\r\n]*)")
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n]*?)[ \t]*")


class ResponseReader:
    """Reads whole HTTP/1.1 responses from a blocking socket and checks their framing: the
    status line, header syntax, and the body by Content-Length or chunked coding (none after
    HEAD, 1xx, 204 and 304). recv_bytes and pause_s make a slow reader: at most that many bytes
    per recv, with a pause before each."""

    def __init__(self, sock, recv_bytes=65536, pause_s=0.0):
        self.sock = sock
        self.recv_bytes = recv_bytes
        self.pause_s = pause_s
        self.buf = bytearray()
        self.received = 0

    def fill(self):
        if self.pause_s:
            time.sleep(self.pause_s)
        data = self.sock.recv(self.recv_bytes)
        if not data:
            raise PeerClosed(f"connection closed with {len(self.buf)} bytes of a response "
                             f"unread: {bytes(self.buf[:120])!r}")
        self.received += len(data)
        self.buf += data

    def _line(self, limit=65536):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return line
            if len(self.buf) > limit:
                raise BadResponse(f"no CRLF in {len(self.buf)} bytes: {bytes(self.buf[:120])!r}")
            self.fill()

    def _exactly(self, n):
        while len(self.buf) < n:
            self.fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def response(self, head=False):
        """The next response (a 100 Continue is a response too). head: the request was HEAD."""
        line = self._line()
        match = _STATUS_LINE.fullmatch(line)
        if not match:
            raise BadResponse(f"bad status line {line[:120]!r}")
        status, reason = int(match.group(1)), match.group(2).decode("latin-1")
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            field = _HEADER_LINE.fullmatch(line)
            if not field:
                raise BadResponse(f"bad header line {line[:120]!r} after {status}")
            headers.append((field.group(1).decode().lower(), field.group(2).decode("latin-1")))
        response = Response(status, reason, headers, b"")
        length = response.header("content-length")
        coding = response.header("transfer-encoding")
        if length is not None and coding is not None:
            raise BadResponse(f"Content-Length beside Transfer-Encoding: {response!r}")
        if length is not None and not length.isdigit():
            raise BadResponse(f"bad Content-Length {length!r}")
        if head or status < 200 or status in (204, 304):
            return response
        if coding is not None:
            if coding.lower() != "chunked":
                raise BadResponse(f"Transfer-Encoding {coding!r}")
            response.body = self._chunked()
        elif length is not None:
            response.body = self._exactly(int(length))
        else:
            raise BadResponse(f"a {status} without Content-Length or chunked coding")
        return response

    def _chunked(self):
        body = bytearray()
        while True:
            size_line = self._line()
            size = size_line.split(b";", 1)[0].strip()
            if not size or any(c not in b"0123456789abcdefABCDEF" for c in size):
                raise BadResponse(f"bad chunk size line {size_line[:60]!r}")
            n = int(size, 16)
            if n == 0:
                while self._line():  # trailers
                    pass
                return bytes(body)
            body += self._exactly(n)
            if self._exactly(2) != b"\r\n":
                raise BadResponse("chunk data not followed by CRLF")

    def expect_eof(self):
        """The peer closes next: no byte may come before its end (a reset counts as an end)."""
        if self.buf:
            raise BadResponse(f"{len(self.buf)} bytes after the last answer: "
                              f"{bytes(self.buf[:120])!r}")
        try:
            data = self.sock.recv(4096)
        except ConnectionResetError:
            return
        if data:
            raise BadResponse(f"bytes after the last answer: {data[:120]!r}")
