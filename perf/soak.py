#!/usr/bin/env python3
"""A soak: mixed traffic on each backend in turn, every answer checked, and the server's memory,
descriptors and pools watched.

    python3 perf/soak.py [--seconds 60] [--bin build/bin/ringserve-http] [--backends ...]
                         [--rate 1.0] [-- SERVER FLAGS]

(or scripts/soak.sh [seconds]). The seconds are split evenly between the backends (uring,
epoll, threads by default). Each backend gets a fresh ringserve-http with --root on a temporary
directory of static files (small ones, 20 KiB, 1 MiB), and these clients at once, each on its
own thread and paced so that the whole load takes about half a core:

- keepalive: GET/HEAD/OPTIONS of the built-in routes and the files, Range (206), If-None-Match
  (304), 404 and small POST /echo, on kept connections;
- churn: a new connection per request (Connection: close, HTTP/1.0, or the client closes);
- pipeline: bursts of 2 to 32 mixed requests (small echoes with Content-Length or chunked
  bodies, delays, files) in one write, answers checked in order;
- slow: a 1 MiB file, or a burst of 100 pipelined requests, read a few KB at a time through a
  small receive buffer (the server's output backpressure);
- reset: half a request, half a body, or half a response read, then a reset (SO_LINGER 0) or a
  close; a /delay the client leaves before it is answered;
- garbage: invalid requests (some after valid ones in the same write): the answer is 400 (414,
  431 for the limits) with Connection: close and the parser's reason, then the end;
- body: POST /echo with 10 to 80 KB bodies, by Content-Length, chunked, or after
  Expect: 100-continue;
- delay: /delay?ms=N (never answered early; several pipelined are answered in order) and an
  invalid N (400).

Every answer is parsed (status line, headers, Content-Length or chunked framing) and compared
with what it must be, byte for byte.

The warm-up is the first third of a backend's time (at most a minute). It begins by writing
every receive buffer once and by taking every pool to a high-water mark above the load's
(prime_buffers, prime_pools say why); the load then runs to the end. The run fails (exit 1,
with the backend, the client and what differed) on a wrong answer, or when:
- RSS grows after the warm-up: the median of a window of samples (half the warm-up, at most
  30 s) above the median of the warm-up's last such window by more than 5% + 512 KiB;
- a pool grows after the warm-up (ringserve_pool_grows_total, ringserve_http_pool_grows_total);
- once the clients have gone, the server's descriptors or its pools in use (connections,
  sessions, request states, chunks, response slots, files, held buffers, body bytes) do not
  come back to what they were before the load (each waited for, with a bound);
- an error counter that this traffic must leave at 0 moved (5xx, timeouts, memory
  rejections, overflows, accept errors), the server died, or it did not exit 0 on SIGTERM.
It prints one line per backend with the figures.
"""
import argparse
import collections
import os
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no perf/__pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_probe import (BadResponse, ResponseReader, ServerDidNotStart, cpu_seconds,  # noqa
                          fd_count, metrics, metrics_port, raise_nofile, start_server, vm_rss_kib,
                          wait_until)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLAINTEXT = b"Hello, World!"
JSON = b'{"message":"Hello, World!"}'
TIMEOUT_S = 20  # any single read or write; generous: the machine is shared
MIB = 1 << 20

# RSS bound (run_backend, rss_windows): after the warm-up, no window's median RSS above the
# warm-up's by more than 5% (the figure) plus 512 KiB.
RSS_BOUND_FRACTION = 0.05
RSS_SLACK_KIB = 512
WARMUP_CAP_S = 60  # long runs: the warm-up is the first minute

# Gauges of things in use: each must come back to its value before the load once the clients
# have gone (read on the same kept connection, so that its own /metrics request is in both).
IN_USE_GAUGES = [
    "ringserve_connections_open",
    "ringserve_http_sessions",
    'ringserve_http_request_states{state="in_use"}',
    "ringserve_http_body_memory_bytes",
    "ringserve_pool_connections",
    "ringserve_pool_chunks",
    "ringserve_pool_response_slots",
    "ringserve_pool_files",
    "ringserve_buffers_held",
    "ringserve_fixed_files_in_use",
    "ringserve_send_zc_close_waits",
]
GROWTH_COUNTERS = ["ringserve_pool_grows_total", "ringserve_http_pool_grows_total"]
# Counters that valid traffic, and invalid traffic that is answered 4xx, leave at 0.
ZERO_COUNTERS = [
    'ringserve_http_responses_total{class="5xx"}',
    'ringserve_http_timeouts_total{phase="header"}',
    'ringserve_http_timeouts_total{phase="idle"}',
    'ringserve_http_timeouts_total{phase="body"}',
    'ringserve_http_timeouts_total{phase="send"}',
    "ringserve_http_body_memory_rejections_total",
    "ringserve_rejected_over_cap_total",
    "ringserve_accept_errors_total",
    "ringserve_stash_overflows_total",
    "ringserve_cq_overflow_dropped_total",
    "ringserve_access_log_dropped_total",
]


# Content-Type by extension ("/" is /index.html).
FILE_TYPES = {".txt": "text/plain; charset=utf-8", ".json": "application/json",
              ".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
              ".bin": "application/octet-stream"}


class Mismatch(Exception):
    """An answer that is well formed but not the one the request must get."""


# ---------------------------------------------------------------------------------------------
# The static files, and the expected answer of each request.


def make_root(path):
    """Writes the files below `path`: {URL path: bytes}."""
    rng = random.Random(12)
    files = {
        "/small.txt": b"a small file\n" * 16,
        "/index.html": b"<!doctype html><title>soak</title><p>index</p>\n",
        "/mid.json": (b'{"k":"' + bytes(rng.choice(b"abcdefghij") for _ in range(20470)) +
                      b'"}\n'),
        "/big.bin": rng.randbytes(MIB),
        "/sub/style.css": b"body { color: #123; }\n" * 8,
    }
    for name, data in files.items():
        full = os.path.join(path, name.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
    # For the warm-up: more than the kernel's socket buffers take, so that a client that asks
    # for it and does not read holds the server at its output limit. Sparse: no disk.
    with open(os.path.join(path, "huge.bin"), "wb") as f:
        f.truncate(64 * MIB)
    files["/"] = files["/index.html"]
    return files


class Expect:
    """A request's bytes and what its answer must be."""

    def __init__(self, what, data, status, body=None, head=False, closes=False,
                 content_type=None, check=None, min_s=0.0):
        self.what = what  # for messages: "GET /mid.json"
        self.data = data
        self.status = status
        self.body = body
        self.head = head
        self.closes = closes
        self.content_type = content_type
        self.check = check  # extra check(response) -> error text or None
        self.min_s = min_s

    def verify(self, r, elapsed_s=None):
        def fail(why):
            raise Mismatch(f"{self.what}: {why}; got {r!r}")

        if r.status != self.status:
            fail(f"status {r.status}, expected {self.status}")
        if self.body is not None and not self.head and r.body != self.body:
            at = next((i for i, (a, b) in enumerate(zip(r.body, self.body)) if a != b),
                      min(len(r.body), len(self.body)))
            fail(f"body differs at byte {at} ({len(r.body)} bytes, expected {len(self.body)})")
        if self.head:
            if r.header("content-length") != str(len(self.body or b"")):
                fail(f"HEAD Content-Length {r.header('content-length')}, expected "
                     f"{len(self.body or b'')}")
        if r.closes() != self.closes:
            fail("Connection: close " + ("missing" if self.closes else "on a kept connection"))
        if self.content_type is not None and r.header("content-type") != self.content_type:
            fail(f"Content-Type {r.header('content-type')!r}, expected {self.content_type!r}")
        if self.check:
            error = self.check(r)
            if error:
                fail(error)
        if elapsed_s is not None and elapsed_s < self.min_s:
            fail(f"answered after {elapsed_s * 1000:.1f} ms, before {self.min_s * 1000:.0f} ms")


def request(method, target, headers=(), body=b"", version="1.1", host=True):
    lines = [f"{method} {target} HTTP/{version}"]
    if host:
        lines.append("Host: soak")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body, rng):
    out = bytearray()
    at = 0
    while at < len(body):
        n = min(len(body) - at, rng.choice((1, 7, 100, 1000, 4096, 16384)))
        out += b"%x\r\n" % n + body[at:at + n] + b"\r\n"
        at += n
    return bytes(out + b"0\r\n\r\n")


class Requests:
    """Builds requests and their expected answers; one per client thread (its own rng)."""

    def __init__(self, files, rng, noise):
        self.files = files
        self.rng = rng
        self.noise = noise  # random bytes to cut bodies from
        self.etags = {}

    def body(self, lo, hi):
        # lo 0: an empty body one time in 50 (its answer carries the Content-Type all the same).
        n = 0 if lo == 0 and self.rng.random() < 0.02 else self.rng.randint(max(lo, 1), hi)
        at = self.rng.randrange(0, len(self.noise) - n)
        return self.noise[at:at + n]

    def plaintext(self):
        return Expect("GET /plaintext", request("GET", "/plaintext"), 200, PLAINTEXT,
                      content_type="text/plain")

    def json(self):
        return Expect("GET /json", request("GET", "/json"), 200, JSON,
                      content_type="application/json")

    def file(self, path=None, method="GET"):
        path = path or self.rng.choice(["/small.txt", "/mid.json", "/", "/sub/style.css"])

        def keep_etag(r):
            etag = r.header("etag")
            if not etag or r.header("last-modified") is None:
                return "no ETag or Last-Modified"
            self.etags[path] = etag
            return None

        return Expect(f"{method} {path}", request(method, path), 200, self.files[path],
                      head=method == "HEAD", check=keep_etag,
                      content_type=FILE_TYPES[os.path.splitext(path)[1] or ".html"])

    def not_modified(self):
        path, etag = self.rng.choice(sorted(self.etags.items()))
        def same_etag(r):
            return None if r.header("etag") == etag else f"ETag {r.header('etag')}, not {etag}"

        return Expect(f"GET {path} If-None-Match", request("GET", path, [f"If-None-Match: {etag}"]),
                      304, b"", check=same_etag)

    def range(self):
        size = len(self.files["/big.bin"])
        a = self.rng.randrange(0, size)
        b = min(size - 1, a + self.rng.randrange(0, 100000))
        want = f"bytes {a}-{b}/{size}"

        def content_range(r):
            got = r.header("content-range")
            return None if got == want else f"Content-Range {got!r}, expected {want!r}"

        return Expect(f"GET /big.bin bytes={a}-{b}",
                      request("GET", "/big.bin", [f"Range: bytes={a}-{b}"]), 206,
                      self.files["/big.bin"][a:b + 1], check=content_range,
                      content_type=FILE_TYPES[".bin"])

    def missing(self):
        return Expect("GET /missing", request("GET", f"/missing-{self.rng.randrange(99)}"), 404,
                      b"Not Found\n")

    def options(self):
        def allow(r):
            return None if r.header("allow") == "GET, HEAD, OPTIONS" else "Allow header"

        return Expect("OPTIONS /plaintext", request("OPTIONS", "/plaintext"), 200, b"",
                      check=allow)

    def echo(self, lo=0, hi=2000, coding=None, content_type=None):
        body = self.body(lo, hi)
        content_type = content_type or self.rng.choice(
            ["application/octet-stream", "text/plain", "application/x-soak; v=1"])
        coding = coding or self.rng.choice(["length", "chunked"])
        if coding == "chunked":
            data = request("POST", "/echo", [f"Content-Type: {content_type}",
                                             "Transfer-Encoding: chunked"], chunked(body, self.rng))
        else:
            data = request("POST", "/echo", [f"Content-Type: {content_type}",
                                             f"Content-Length: {len(body)}"], body)
        return Expect(f"POST /echo {len(body)} B {coding}", data, 200, body,
                      content_type=content_type)

    def slow_burst(self, n):
        """The slow reader's burst: a fixed cycle, so that what one connection holds at most
        (answers owed, files read ahead) is the same every time and the warm-up reaches it."""
        makers = [lambda: self.file("/mid.json"), self.plaintext, self.json,
                  lambda: self.file("/small.txt")]
        return [makers[i % len(makers)]() for i in range(n)]

    def delay(self, ms):
        return Expect(f"GET /delay?ms={ms}", request("GET", f"/delay?ms={ms}"), 200,
                      f"{ms} ms\n".encode(), min_s=ms / 1000)


# ---------------------------------------------------------------------------------------------
# Connections.


def connect(port, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(TIMEOUT_S)
    s.connect(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset(sock):
    """Closes with SO_LINGER 0: the peer gets a reset, not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def send(reader, data):
    """Writes all of data, reading into reader's buffer meanwhile, so that a server that stops
    reading until its answers are taken cannot deadlock a pipelined burst."""
    sock = reader.sock
    view = memoryview(data)
    deadline = time.monotonic() + TIMEOUT_S
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"could not send {len(view)} of {len(data)} bytes in {TIMEOUT_S} s")
        readable, writable, _ = select.select([sock], [sock], [], left)
        if readable:
            chunk = sock.recv(65536)
            if not chunk:
                return  # the peer has closed: its answers (or their absence) say why
            reader.buf += chunk
        if writable:
            view = view[sock.send(view):]


def exchange(reader, expects, timed=False):
    """Sends every request in one write and checks every answer, in order."""
    start = time.monotonic()
    send(reader, b"".join(e.data for e in expects))
    for e in expects:
        r = reader.response(head=e.head)
        if r.status == 100 and e.status != 100:
            raise Mismatch(f"{e.what}: an unasked 100 Continue")
        e.verify(r, time.monotonic() - start if timed else None)
    return len(expects)


class Pace:
    """Paces a loop at `rate` turns per second, without bursts to catch up."""

    def __init__(self, rate, stop):
        self.period = 1.0 / rate
        self.stop = stop
        self.next = time.monotonic()

    def wait(self):
        self.next += self.period
        now = time.monotonic()
        if self.next < now - self.period:
            self.next = now
        return not self.stop.wait(max(0.0, self.next - now))


# ---------------------------------------------------------------------------------------------
# The clients: each op() does one unit of work and returns the answers it checked.


class Client:
    def __init__(self, port, files, rng, noise):
        self.port = port
        self.rng = rng
        self.req = Requests(files, rng, noise)
        self.reader = None
        self.doing = ""

    def conn(self, **kw):
        if self.reader is None:
            self.reader = ResponseReader(connect(self.port, kw.get("rcvbuf")),
                                         **{k: v for k, v in kw.items() if k != "rcvbuf"})
        return self.reader

    def drop(self):
        if self.reader is not None:
            self.reader.sock.close()
            self.reader = None

    def run(self, expects, timed=False, **kw):
        self.doing = " + ".join(e.what for e in expects[:4]) + (" ..." if len(expects) > 4 else "")
        n = exchange(self.conn(**kw), expects, timed)
        if expects[-1].closes:
            self.reader.expect_eof()
            self.drop()
        return n

    def close(self):
        self.drop()


class KeepAlive(Client):
    def op(self):
        r = self.req
        pick = self.rng.random()
        if pick < 0.25:
            e = r.plaintext()
        elif pick < 0.35:
            e = r.json()
        elif pick < 0.60:
            e = r.file()
        elif pick < 0.65:
            e = r.file(method="HEAD")
        elif pick < 0.72:
            e = r.range()
        elif pick < 0.78 and r.etags:
            e = r.not_modified()
        elif pick < 0.82:
            e = r.missing()
        elif pick < 0.85:
            e = r.options()
        else:
            e = r.echo()
        return self.run([e])


class Churn(Client):
    def op(self):
        r = self.req
        e = self.rng.choice([r.plaintext, r.json, r.file])()
        mode = self.rng.randrange(4)
        if mode == 0:  # Connection: close
            e.data = e.data.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
            e.closes = True
        elif mode == 1:  # HTTP/1.0 without keep-alive
            e.data = e.data.replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1)
            e.closes = True
        n = self.run([e])  # mode 2: the client closes after one answer
        if mode == 3:  # a second request, then the client closes
            n += self.run([r.plaintext()])
        self.drop()
        return n


class Pipeline(Client):
    def op(self):
        r = self.req
        makers = [r.plaintext, r.json, r.file, lambda: r.file(method="HEAD"), r.echo,
                  lambda: r.delay(self.rng.randrange(6)), r.missing]
        expects = [self.rng.choice(makers)() for _ in range(self.rng.randint(2, 32))]
        if self.rng.random() < 0.1:
            last = expects[-1]
            last.data = last.data.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
            last.closes = True
        return self.run(expects)


class SlowReader(Client):
    """Reads its answers 4 KiB at a time with a pause, through an 8 KiB receive buffer: the
    first of these clients a 1 MiB file, the second the slow reader's burst of 100 pipelined
    requests, always (the burst makes the server hold the most, a steady demand keeps its RSS
    steady too: it gives back what stays unused for a second)."""

    def op(self):
        r = self.req
        kw = dict(rcvbuf=8192, recv_bytes=4096, pause_s=0.001)
        if self.index % 2 == 0:
            return self.run([r.file("/big.bin")], **kw)
        return self.run(r.slow_burst(100), **kw)


class Resets(Client):
    """Leaves mid-request or mid-response; only what it reads before leaving is checked."""

    def op(self):
        r = self.req
        s = connect(self.port, rcvbuf=16384)
        mode = self.rng.randrange(7)
        self.doing = f"mode {mode}"
        n = 0
        try:
            if mode == 0:  # half a request head, reset
                data = r.plaintext().data
                s.sendall(data[:self.rng.randrange(1, len(data) - 1)])
                reset(s)
            elif mode == 1:  # a head and half its body, reset or close
                data = r.echo(20000, 60000, coding="length").data
                s.sendall(data[:len(data) // 2])
                self.leave(s)
            elif mode in (2, 3):  # half a 1 MiB answer read, then reset (2) or close (3)
                reader = ResponseReader(s, recv_bytes=16384)
                s.sendall(request("GET", "/big.bin"))
                want = self.rng.randrange(1, 300000)
                while reader.received < want:
                    reader.fill()
                head, sep, got = bytes(reader.buf).partition(b"\r\n\r\n")
                if not sep or not head.startswith(b"HTTP/1.1 200 OK\r\n"):
                    raise Mismatch(f"GET /big.bin: {head[:200]!r}")
                if got != self.req.files["/big.bin"][:len(got)]:
                    raise Mismatch("GET /big.bin: the first bytes differ from the file")
                n = 1
                if mode == 2:
                    reset(s)
            elif mode == 4:  # a pipelined burst, one answer read, reset
                reader = ResponseReader(s)
                expects = r.slow_burst(20)
                exchange(reader, expects[:1])  # sends the first, checks its answer
                s.sendall(b"".join(e.data for e in expects[1:]))
                reset(s)
                n = 1
            elif mode == 5:  # a /delay left before its answer (client abort)
                s.sendall(r.delay(300).data)
                time.sleep(0.01)
                self.leave(s)
            else:  # a connection that sends nothing
                s.close()
        finally:
            s.close()
        return n

    def leave(self, s):
        """A reset or a close, at random."""
        if self.rng.random() < 0.5:
            reset(s)
        s.close()


GARBAGE = [
    (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     400, "te_cl_conflict"),
    (b"GET /plaintext HTTP/1.1\r\n\r\n", 400, "bad_host"),
    (b"GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_host"),
    (b"GET /plaintext HTTP/1.1\r\nHost : t\r\n\r\n", 400, "bad_header"),
    (b"GET /plaintext HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400, "obs_fold"),
    (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     "bad_chunk"),
    (b"\x00\x01garbage\r\n\r\n", 400, "bad_request_line"),
    (b"GET /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 1, 2\r\n\r\n", 400,
     "bad_content_length"),
    (b"GET /plaintext HTTP/1.1\nHost: t\n\n", 400, "bad_line_ending"),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414, "line_too_long"),
    (b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"b" * 17000 + b"\r\n\r\n", 431,
     "header_too_large"),
]


class Garbage(Client):
    def op(self):
        r = self.req
        if self.rng.random() < 0.2:
            n = self.rng.randint(1, 200)
            junk = bytes(self.rng.choice(b"abcXYZ019/{}<>") for _ in range(n))
            data, status, kind = junk + b"\r\n\r\n", 400, "bad_request_line"
        else:
            data, status, kind = self.rng.choice(GARBAGE)
        before = [r.plaintext() for _ in range(self.rng.randrange(3))]

        def reason(resp):
            return None if resp.body.endswith(f": {kind}\n".encode()) else f"reason, not {kind}"

        bad = Expect(f"invalid ({kind})", data, status, closes=True, check=reason)
        return self.run(before + [bad])


class Bodies(Client):
    def op(self):
        r = self.req
        mode = self.rng.randrange(3)
        if mode < 2:
            return self.run([r.echo(10000, 80000, coding=("length", "chunked")[mode])])
        e = r.echo(10000, 80000, coding="length")
        head, _, body = e.data.partition(b"\r\n\r\n")
        reader = self.conn()
        self.doing = f"{e.what} after 100-continue"
        send(reader, head.replace(b"\r\n", b"\r\nExpect: 100-continue\r\n", 1) + b"\r\n\r\n")
        cont = reader.response()
        if cont.status != 100:
            raise Mismatch(f"Expect: 100-continue answered {cont!r}")
        send(reader, body)
        e.verify(reader.response())
        return 1


class Delay(Client):
    def op(self):
        r = self.req
        pick = self.rng.random()
        if pick < 0.1:
            e = Expect("GET /delay?ms=x", request("GET", "/delay?ms=soak"), 400,
                       b"GET /delay?ms=N with 0 <= N <= --max-delay-ms\n")
            return self.run([e])
        if pick < 0.3:  # answered in request order, whichever timer fires first
            return self.run([r.delay(ms) for ms in (25, 1, 10, 0)], timed=True)
        return self.run([r.delay(self.rng.randrange(26))], timed=True)


# kind: (client class, threads, turns per second per thread at --rate 1)
KINDS = {
    "keepalive": (KeepAlive, 2, 700),
    "churn": (Churn, 1, 180),
    "pipeline": (Pipeline, 1, 30),
    "slow": (SlowReader, 2, 3),
    "reset": (Resets, 1, 60),
    "garbage": (Garbage, 1, 80),
    "body": (Bodies, 1, 50),
    "delay": (Delay, 2, 40),
}
CLIENT_THREADS = sum(count for _, count, _ in KINDS.values())


# ---------------------------------------------------------------------------------------------
# One backend's run.


class Failed(Exception):
    pass


class Load:
    """The client threads of one run."""

    def __init__(self, port, files, rate, seed):
        self.stop = threading.Event()
        self.failure = None
        self.lock = threading.Lock()
        self.answers = collections.Counter()
        self.threads = []
        self.started = False
        noise = self.noise = random.Random(seed).randbytes(1 << 17)
        for kind, (cls, count, turns) in KINDS.items():
            for i in range(count):
                rng = random.Random(f"{seed}-{kind}-{i}")
                client = cls(port, files, rng, noise)
                client.index = i
                t = threading.Thread(target=self.drive, args=(kind, client, turns * rate),
                                     name=f"soak-{kind}-{i}", daemon=True)
                self.threads.append(t)

    def drive(self, kind, client, rate):
        pace = Pace(rate, self.stop)
        try:
            while pace.wait():
                n = client.op()
                with self.lock:
                    self.answers[kind] += n
        except Exception as e:  # noqa: BLE001: any error of a client fails the run
            with self.lock:
                if self.failure is None:
                    self.failure = f"{kind} client ({client.doing}): {type(e).__name__}: {e}"
            self.stop.set()
        finally:
            try:
                client.close()
            except OSError:
                pass

    def start(self):
        for t in self.threads:
            t.start()
        self.started = True

    def finish(self):
        self.stop.set()
        if not self.started:
            return
        deadline = time.monotonic() + 2 * TIMEOUT_S + 10
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self.threads if t.is_alive()]
        if stuck and self.failure is None:
            self.failure = f"clients still running after the stop: {stuck}"


def server_flag(server_args, name, default):
    """The value of --name among the server's flags (--name V or --name=V), or default."""
    for i, arg in enumerate(server_args):
        if arg == name and i + 1 < len(server_args):
            return server_args[i + 1]
        if arg.startswith(name + "="):
            return arg.partition("=")[2]
    return default


def prime_buffers(port, server_args, noise):
    """Writes every page of the receive buffers once, through POST /echo.

    The ring hands its provided buffers out in turn, so a steady load of small requests reaches
    the last page of the last one (512 x 16 KiB by default: 8 MiB) only after minutes, and the
    RSS climbs towards it all that time: memory made at start-up and touched late, not growth.
    1.25 times the buffers' bytes, in 1 MB bodies, on 4 connections per loop (SO_REUSEPORT
    spreads them)."""
    total = (int(server_flag(server_args, "--buffer-count", 512)) *
             int(server_flag(server_args, "--buffer-size", 16384)) * 5 // 4)
    body = (noise * (MIB // len(noise) + 1))[:1000000]
    data = request("POST", "/echo", [f"Content-Length: {len(body)}"], body)
    answers = 0
    for _ in range(4 * int(server_flag(server_args, "--threads", 1))):
        with connect(port) as s:
            reader = ResponseReader(s)
            for _ in range(-(-total // len(body))):
                send(reader, data)
                r = reader.response()
                if r.status != 200 or r.body != body:
                    raise Failed(f"priming: POST /echo 1 MB: {r!r}")
                answers += 1
    return answers


def settle_requests(control, what, bound_s=30):
    """Waits until the server takes no more requests: its request count, less the /metrics
    requests that ask, stays the same for half a second (three reads 0.25 s apart)."""
    polls = [0]
    seen = []

    def taken():
        polls[0] += 1
        return metrics(control)["ringserve_http_requests_total"] - polls[0]

    def same(now):
        seen.append(now)
        return len(seen) >= 3 and seen[-3] == seen[-2] == now

    wait_until(what, taken, same, bound_s, 0.25)


def prime_pools(port, control, base_open, files, noise, connections, stalled):
    """Takes every pool to a high-water mark above what the load reaches, so that what grows
    after the warm-up is growth, not a peak the load happened to reach late.

    The load has at most one connection per client thread open at once, and one more closing
    (CLIENT_THREADS x 2 in all), and one connection holds at most: 64 answers owed
    (--max-pending-requests) with the files among them read ahead (the slow reader's burst),
    a file's queued output, 32 small echoes, an 80 KB body, a 26 KB head. First each of
    `connections` clients (all open at once) sends all of that and one request of every other
    kind, and reads and checks the answers; then each of `stalled` clients, at once, asks for a
    file larger than the kernel's socket buffers followed by the slow reader's burst, and reads
    nothing: the server holds them all at their limits together. Once it takes no more
    requests they are reset. On the threads backend each client is a worker thread with its
    own pools, which the load's connections then reuse. Returns the answers checked."""
    rng = random.Random(7)
    req = Requests(files, rng, noise)
    # A head that arrives in pieces is gathered in a head buffer, moved to the next size up as
    # it grows (2 KiB to 32 KiB): one that comes 1.5 KB at a time takes one of each size, up to
    # the size the load's largest head (a 17 KB field) needs; it is valid (an 8 KB request line
    # and a 16 KB field).
    big_head = Expect("GET /plaintext with a 24 KB head, in pieces",
                      request("GET", "/plaintext?" + "q" * 7900, ["X-Pad: " + "p" * 16000]), 200,
                      PLAINTEXT)
    checked = 0
    readers = []
    open_before = base_open  # the control connection
    try:
        # prime_buffers' connections may still be closing (a lingering close): one of them
        # counted in the baseline would never let the stalled clients below add up.
        wait_until("the buffer-priming connections to close", lambda: metrics(control),
                   lambda m: m["ringserve_connections_open"] == open_before)
        for _ in range(connections):
            reader = ResponseReader(connect(port, rcvbuf=8192))
            readers.append(reader)
            for at in range(0, len(big_head.data), 1500):
                reader.sock.sendall(big_head.data[at:at + 1500])
                time.sleep(0.002)
            big_head.verify(reader.response())
            # Echoes of 16 KB: each takes a chunk as a small one does, and writes all of it.
            expects = [req.echo(16000, 16000, coding="chunked") for _ in range(48)]
            expects += [req.echo(80000, 80000, coding="chunked"), req.file("/big.bin")]
            expects += req.slow_burst(100)
            # One of every other answer, and last an invalid head that ends the connection: every
            # worker thread has been down each path once.
            expects += [req.range(), req.file(method="HEAD"), req.options(), req.missing(),
                        req.delay(1), req.echo(1, 100, coding="length")]
            data, status, kind = GARBAGE[-1]
            expects.append(Expect(f"invalid ({kind})", data, status, closes=True))
            checked += 1 + exchange(reader, expects)
            reader.expect_eof()
        for reader in readers:
            reader.sock.close()
        readers = []
        stall = request("GET", "/huge.bin") + b"".join(e.data for e in req.slow_burst(100))
        for _ in range(stalled):
            readers.append(ResponseReader(connect(port, rcvbuf=8192)))
            readers[-1].sock.sendall(stall)
        # Every stalled client taken in (on threads, each by a worker of its own) before the
        # quiet that says they are all at their limits.
        # (The clients above may still be closing: counted against what was open before them.)
        wait_until("the stalled priming clients to be taken in", lambda: metrics(control),
                   lambda m: m["ringserve_connections_open"] == open_before + stalled)
        settle_requests(control, "the server to take the priming requests")
    except (OSError, BadResponse, Mismatch, TimeoutError) as e:
        raise Failed(f"priming the pools: {type(e).__name__}: {e}") from None
    finally:
        for reader in readers:
            reset(reader.sock)
    return checked


def wait_release(control, bound_s=30):
    """Waits until the event loop has given back the memory of the free chunks the priming
    left (ringserve_pool_chunks_free: 1,024 chunks a second, of those free for a whole second),
    so that the RSS the warm-up ends with is the load's, not the priming's. Returns the
    seconds it took."""
    start = time.monotonic()
    if "ringserve_pool_chunks_free" in metrics(control):
        # The /metrics answers that ask keep a chunk or two in the free list.
        wait_until("the priming's free chunks to be given back", lambda: metrics(control),
                   lambda m: m["ringserve_pool_chunks_free"] <= 2, bound_s, 0.25)
    return time.monotonic() - start


def fmt_kib(kib):
    return f"{kib / 1024:.1f} MiB"


def median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def rss_windows(samples, warm_end, width):
    """The RSS check's figures: the median of the samples in the warm-up's last `width` seconds,
    and the median of each window of that length after it. A median, not a sample: the loops
    give the memory of chunks that stayed free for a second back to the kernel and take it
    again at the load's next peak (slow readers, files read ahead), so one sample swings by
    about a megabyte; growth moves every window. Returns (reference KiB, [(window start s,
    median KiB)])."""
    reference = [kib for t, kib in samples if warm_end - width <= t < warm_end]
    if len(reference) < 2:
        raise Failed(f"too few RSS samples in the warm-up's last {width:.0f} s: {len(reference)}")
    windows = []
    at = warm_end
    last = samples[-1][0] if samples else 0.0
    while at + width <= last + 0.5:  # whole windows only: a short last one is not a median
        window = [kib for t, kib in samples if at <= t < at + width]
        if len(window) < 2:
            break
        windows.append((at, median(window)))
        at += width
    return median(reference), windows


def server_flags(binary):
    """The flags the server knows, from its --help."""
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", help_text))


def run_backend(args, backend, seconds, files, root, seed):
    """Returns the summary line; raises Failed."""
    extra = []
    if backend == "threads" and "--thread-idle-timeout-ms" in server_flags(args.bin) and not any(
            a.startswith("--thread-idle-timeout-ms") for a in args.server_args):
        # A worker thread idle for 10 s ends, and the next one made grows its pools from
        # nothing, which the growth counters cannot tell from growth: the warm-up's workers (one
        # per connection the load can have at once) are kept for the whole run instead.
        extra = ["--thread-idle-timeout-ms", str(int(seconds + 600) * 1000)]
    log = tempfile.TemporaryFile(mode="w+")
    try:
        # The demo routes beside the files; /metrics, with --root, on a listener of its own.
        server, port, line = start_server(
            args.bin, ["--backend", backend, "--root", root, "--demo-routes", "on",
                       "--metrics-listen", "127.0.0.1:0", *extra, *args.server_args], log)
    except ServerDidNotStart as e:
        if backend == "uring" and "start with --backend epoll" in str(e):
            return f"soak {backend}: SKIPPED, no io_uring here ({str(e).splitlines()[-1]})"
        raise Failed(f"{backend}: the server did not start: {e}") from None

    def server_said():
        log.seek(0)
        text = log.read().strip()
        return ("\n  the server's standard error (its end):\n    " +
                "\n    ".join(text.splitlines()[-20:])) if text else ""

    def alive():
        if server.poll() is not None:
            code = server.returncode
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
            raise Failed(f"{backend}: the server died ({how})")

    load = None
    control = None
    try:
        control = socket.create_connection(("127.0.0.1", metrics_port(line)), timeout=TIMEOUT_S)
        base = metrics(control)
        base_fds = fd_count(server.pid)
        load = Load(port, files, args.rate, seed)
        start = time.monotonic()  # the backend's clock: the priming is part of the warm-up
        primed = prime_buffers(port, args.server_args, load.noise)
        # Threads: every worker the load may use stalls once; the loops share their pools, and
        # 8 stalled clients hold several times what the load does at once.
        primed += prime_pools(port, control, base["ringserve_connections_open"], files,
                              load.noise, 2 * CLIENT_THREADS,
                              2 * CLIENT_THREADS if backend == "threads" else 8)
        wait_until("the priming connections to close", lambda: metrics(control),
                   lambda m: m["ringserve_connections_open"] == base["ringserve_connections_open"])
        wait_release(control)
        cpu0, server_cpu0 = time.process_time(), cpu_seconds(server.pid)
        load_start = time.monotonic() - start
        # The warm-up: the first third (at most a minute), and at least long enough for the
        # load to have run 2 s (its first peaks) before the reference window of RSS samples.
        width = min(max(seconds / 6, 2.0), 30.0)
        warmup_s = max(min(seconds / 3, WARMUP_CAP_S), load_start + 2 + width)
        # At least two windows after the warm-up, however long the priming took.
        end_s = max(seconds, warmup_s + 2 * width + 1)
        load.start()
        samples = []  # (t, RSS KiB)
        warm = None  # /metrics at the end of the warm-up
        grown = []  # pool growth after the warm-up
        last_grows = None
        peak_conns = 0
        while not load.stop.is_set():
            t = time.monotonic() - start
            if t >= end_s:
                break
            alive()
            samples.append((t, vm_rss_kib(server.pid)))
            m = metrics(control)
            peak_conns = max(peak_conns, m["ringserve_connections_open"])
            grows = tuple(m.get(g, 0) for g in GROWTH_COUNTERS)
            if warm is None and t >= warmup_s:
                warm = m
            elif warm is not None and grows != last_grows:
                grown.append(f"at {t:.1f} s {last_grows} -> {grows} ("
                             f"{m['ringserve_connections_open']} connections open, "
                             f"{m['ringserve_pool_chunks']} chunks and "
                             f"{m['ringserve_pool_response_slots']} response slots in use)")
            last_grows = grows
            load.stop.wait(0.5)
        load_s = time.monotonic() - start - load_start
        load.finish()
        load_cpu = time.process_time() - cpu0
        server_cpu = cpu_seconds(server.pid) - server_cpu0
        if load.failure:
            alive()
            raise Failed(f"{backend}: {load.failure}")
        alive()
        grows = tuple(metrics(control).get(g, 0) for g in GROWTH_COUNTERS)
        if grows != last_grows:
            grown.append(f"as the load ended {last_grows} -> {grows}")

        # RSS after the warm-up: no window's median above the warm-up's by more than 5% plus
        # 512 KiB. The 512 KiB are for what a median still catches of the load's peaks and of
        # the allocator's pages (a few hundred KiB on this load); 5% is the figure, and
        # on a 15 to 45 MB server already 0.75 to 2.2 MB. A fall is not a failure: the server
        # gives memory back.
        reference, windows = rss_windows(samples, warmup_s, width)
        if not windows:
            raise Failed(f"{backend}: the run was too short to sample after a warm-up")
        bound = reference * RSS_BOUND_FRACTION + RSS_SLACK_KIB
        worst_at, worst = max(windows, key=lambda w: w[1])
        peak_t, peak_rss = max((s for s in samples if s[0] >= warmup_s), key=lambda s: s[1])
        figures = (f"RSS {fmt_kib(reference)} after the {warmup_s:.0f} s warm-up, "
                   f"{fmt_kib(windows[-1][1])} at the end (medians), highest "
                   f"{100 * (worst - reference) / reference:+.1f}% (bound +5% + "
                   f"{RSS_SLACK_KIB} KiB = +{100 * bound / reference:.1f}%), one sample "
                   f"{100 * (peak_rss - reference) / reference:+.1f}% at most")
        if worst - reference > bound:
            raise Failed(f"{backend}: RSS grew after the warm-up: {figures}; the window from "
                         f"{worst_at:.0f} s: {worst} KiB against {reference} KiB; medians: " +
                         " ".join(f"{t:.0f}s:{kib}" for t, kib in windows))

        # No pool grows after the warm-up.
        if grown:
            raise Failed(f"{backend}: pools grew after the warm-up ({warmup_s:.0f} s; "
                         f"{', '.join(GROWTH_COUNTERS)}): {'; '.join(grown)}")

        # Descriptors and pools in use back to their baseline.
        gauges = [g for g in IN_USE_GAUGES if g in base]
        try:
            end_fds = wait_until("the server's descriptors to come back",
                                 lambda: fd_count(server.pid), lambda n: n == base_fds)
        except TimeoutError as e:
            raise Failed(f"{backend}: {e} (before the load: {base_fds}); open now: "
                         f"{sorted(os.listdir(f'/proc/{server.pid}/fd'), key=int)}") from None
        try:
            end_m = wait_until("the pools in use to come back", lambda: metrics(control),
                               lambda m: all(m[g] == base[g] for g in gauges))
        except TimeoutError:
            m = metrics(control)
            raise Failed(f"{backend}: pools in use did not come back to their baseline: " +
                         ", ".join(f"{g} {base[g]} -> {m[g]}" for g in gauges
                                   if m[g] != base[g])) from None
        nonzero = {c: end_m[c] for c in ZERO_COUNTERS if end_m.get(c, 0) != 0}
        if nonzero:
            raise Failed(f"{backend}: error counters moved: {nonzero}")
        alive()

        answers = sum(load.answers.values())
        kinds = ", ".join(f"{k} {load.answers[k]}" for k in KINDS)
        summary = (f"soak {backend}: {load_s:.0f} s of load after {primed} warm-up answers, "
                   f"{answers} answers checked ({kinds}); {figures}; fds {base_fds} -> "
                   f"{end_fds}; pool grows " +
                   "+".join(str(warm.get(g, 0)) for g in GROWTH_COUNTERS) +
                   f" in the warm-up, none after; at most {peak_conns} connections; CPU: "
                   f"server {100 * server_cpu / load_s:.0f}%, load "
                   f"{100 * load_cpu / load_s:.0f}% of a core")
    except (OSError, BadResponse, TimeoutError) as e:
        try:
            alive()
        except Failed as died:
            raise Failed(str(died) + server_said()) from None
        raise Failed(f"{backend}: {type(e).__name__}: {e}" + server_said()) from None
    except Failed as e:
        raise Failed(str(e) + server_said()) from None
    finally:
        if load is not None:
            load.finish()
        if control is not None:
            control.close()
        code = stop_server(server)
        log.close()
    if code != 0:
        raise Failed(f"{backend}: the server's exit status after SIGTERM: {code}")
    return summary


def stop_server(server):
    """SIGTERM, then its exit status (or what kept it from one)."""
    if server.poll() is not None:
        return server.returncode
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        return "none within 30 s (killed)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60,
                        help="the whole run, split evenly between the backends (default 60)")
    parser.add_argument("--bin", default=os.path.join(ROOT, "build", "bin", "ringserve-http"))
    parser.add_argument("--backends", default="uring,epoll,threads")
    parser.add_argument("--rate", type=float, default=1.0,
                        help="scales every client's pace (default 1: about half a core)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("server_args", nargs="*", help="after --: flags for ringserve-http")
    args = parser.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"soak: no server at {args.bin}; build it first (scripts/build.sh release) or "
                 "give --bin")
    raise_nofile()
    # A SIGTERM (a CI timeout) unwinds like an error, so the server under test is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("soak: stopped by SIGTERM"))
    backends = [b for b in args.backends.split(",") if b]
    per_backend = args.seconds / len(backends)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"soak: {args.seconds:.0f} s, {per_backend:.0f} s per backend, seed {seed}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="soak-root-") as root:
        files = make_root(root)
        for backend in backends:
            try:
                print(run_backend(args, backend, per_backend, files, root, seed), flush=True)
            except Failed as e:
                print(f"soak {backend}: FAILED: {e}", flush=True)
                sys.exit(1)
    print("soak: passed")


if __name__ == "__main__":
    main()
