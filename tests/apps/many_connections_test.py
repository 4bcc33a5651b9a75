#!/usr/bin/env python3
"""10,000 idle keep-alive connections held while 1,000 active clients are served.

Usage: many_connections_test.py BIN_DIR --backend uring|epoll [--no-memory-bound]
       [--idle N] [--active N] [--max-per-process N]

ringserve-http runs as its own process (it raises its open-file limit to the hard limit). The
idle connections are held by helper processes of this script, as many as the open-file limit
needs (each raises its own limit as far as the hard limit allows). Each idle connection sends
one request first, so that it is a kept connection resting after an answer, as the lab measures
it. Then 1,000 clients connect at once and each sends three requests on its connection; every
answer is read and checked byte for byte. The same active load runs once before the idle
connections open, so that the pools it needs are in the baseline the idle ones are measured
from.

It asserts:
- every active request is answered, correctly;
- the memory per idle connection: the change of the server's VmRSS, and of what its pools
  account for in /metrics (connection objects, sessions, request states), over the idle
  connections, each under a bound with a margin (--no-memory-bound under the sanitizers, whose
  shadow memory and redzones are not the server's);
- once every client has gone: connections back to the one this script keeps, no request state
  in use but the one of the /metrics request asking, no output chunk or response slot held, no receive buffer held.

Each wait is for the event itself (the server's gauges), with a bound.
"""
import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "perf"))
from server_probe import metrics, raise_nofile, read_response, vm_rss_kib  # noqa: E402

PLAINTEXT = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
JSON = b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n"
PLAINTEXT_BODY = b"Hello, World!"
JSON_BODY = b'{"message":"Hello, World!"}'

# Bounds per idle connection. The pools' accounting is exact (objects times their size), so it
# gets the target itself: 512 bytes (measured: 472 on both backends). RSS moves with the load on
# the machine and the allocator's pages, so it gets a margin (measured: about 475 bytes; it was
# about 900 before the connections were made lean, which this bound catches).
RSS_BOUND = 700
POOL_BOUND = 512
SKIP = 77  # ctest's SKIP_RETURN_CODE


def pool_bytes(m):
    return (m.get("ringserve_connection_bytes", 0) + m.get("ringserve_http_session_bytes", 0) +
            m.get("ringserve_http_request_state_bytes", 0))


def wait_for(what, sock, predicate, bound_s=30):
    deadline = time.monotonic() + bound_s
    while True:
        m = metrics(sock)
        if predicate(m):
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def hold(port, count):
    """Helper process: opens `count` kept connections (one answered request each), says
    'ready', and holds them until its standard input closes."""
    raise_nofile()
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(PLAINTEXT)
        status, body = read_response(s)
        if status != 200 or body != PLAINTEXT_BODY:
            print(f"bad answer {status} {body!r}", flush=True)
            return 1
        socks.append(s)
    print("ready", flush=True)
    sys.stdin.read()
    for s in socks:
        s.close()
    return 0


async def active_client(port, index, results):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for k in range(3):
            request, body = (PLAINTEXT, PLAINTEXT_BODY) if (index + k) % 2 == 0 else (JSON,
                                                                                     JSON_BODY)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
            got = await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200 ") or got != body:
                results.append(f"client {index} request {k}: {head[:40]!r} {got!r}")
                return
        results.append(None)
    finally:
        writer.close()


async def serve_active(port, count):
    results = []
    await asyncio.wait_for(
        asyncio.gather(*(active_client(port, i, results) for i in range(count))), timeout=120)
    return results


def check_active(port, count):
    results = asyncio.run(serve_active(port, count))
    failures = [r for r in results if r is not None]
    assert not failures, failures[:5]
    assert len(results) == count, f"{len(results)} of {count} clients finished"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bin_dir")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--idle", type=int, default=10000)
    parser.add_argument("--active", type=int, default=1000)
    parser.add_argument("--no-memory-bound", action="store_true")
    parser.add_argument("--max-per-process", type=int, default=0,
                        help="idle connections per holder process at most (default: what the "
                        "open-file limit allows)")
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold is not None:
        return hold(args.port, args.hold)

    limit = raise_nofile()
    cap = args.idle + args.active + 100
    if limit < cap + 100:
        print(f"SKIP: the hard open-file limit ({limit}) is below what the server needs for "
              f"{cap} connections")
        return SKIP
    per_process = max(1, min(args.idle, limit - 64))
    if args.max_per_process > 0:
        per_process = min(per_process, args.max_per_process)
    # Timeouts far beyond the test's length: on a slow (or sanitized) build, opening 10,000
    # connections from Python must not let the first ones (or the control one) time out.
    log = tempfile.TemporaryFile(mode="w+")
    server = subprocess.Popen(
        [os.path.join(args.bin_dir, "ringserve-http"), "--port", "0", "--backend", args.backend,
         "--max-connections", str(cap), "--idle-timeout-ms", "600000", "--header-timeout-ms",
         "600000"], stdout=subprocess.PIPE, stderr=log, text=True)
    holders = []
    try:
        line = server.stdout.readline()
        match = re.search(r" port (\d+)", line)
        if not match:
            server.wait(timeout=30)
            log.seek(0)
            error = log.read()
            if args.backend == "uring" and "io_uring" in error:
                print(f"SKIP: no io_uring here: {error.strip()}")
                return SKIP
            raise AssertionError(f"no start-up line: {line!r} {error}")
        port = int(match.group(1))
        control = socket.create_connection(("127.0.0.1", port))
        control.settimeout(30)
        control.sendall(PLAINTEXT)
        assert read_response(control) == (200, PLAINTEXT_BODY)
        # The active load once first, so that what the pools need for it (receive buffers,
        # output chunks, request states) is in the baseline, not counted to the idle ones.
        check_active(port, args.active)
        wait_for("the warm-up clients to go", control,
                 lambda m: m["ringserve_connections_open"] == 1)
        base = metrics(control)
        base_rss = vm_rss_kib(server.pid)

        # The idle connections, in as many processes as the open-file limit needs.
        left = args.idle
        while left > 0:
            n = min(left, per_process)
            holders.append(subprocess.Popen(
                [sys.executable, __file__, args.bin_dir, "--backend", args.backend, "--hold",
                 str(n), "--port", str(port)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            left -= n
        for h in holders:
            assert h.stdout.readline().strip() == "ready", "a holder failed"
        idle = wait_for("the idle connections", control,
                        lambda m: m["ringserve_connections_open"] >= args.idle + 1)
        time.sleep(1)  # as the lab measures: the RSS change 1 s after the connections opened
        idle_rss = vm_rss_kib(server.pid)
        idle = metrics(control)
        rss_each = (idle_rss - base_rss) * 1024 / args.idle
        pools_each = (pool_bytes(idle) - pool_bytes(base)) / args.idle
        print(f"{args.backend}: {len(holders)} holder process(es), {args.idle} idle connections: "
              f"{rss_each:.0f} B of RSS each, {pools_each:.0f} B from the pools' accounting")

        check_active(port, args.active)
        print(f"{args.active} active clients beside them: {3 * args.active} answers, every one "
              "right")

        if not args.no_memory_bound:
            assert rss_each <= RSS_BOUND, f"{rss_each:.0f} B of RSS per idle connection"
            assert pools_each <= POOL_BOUND, f"{pools_each:.0f} B of pools per idle connection"

        for h in holders:
            h.stdin.close()
            assert h.wait(timeout=60) == 0
        holders = []
        after = wait_for("every client to go", control,
                         lambda m: m["ringserve_connections_open"] == 1 and
                         # the /metrics request that asks is the one in use
                         m["ringserve_http_request_states{state=\"in_use\"}"] == 1 and
                         m["ringserve_pool_chunks"] == base["ringserve_pool_chunks"] and
                         m["ringserve_pool_response_slots"] == 0 and
                         m["ringserve_buffers_held"] == 0)
        assert after["ringserve_http_sessions"] == 1, after["ringserve_http_sessions"]
        print("after: back to the baseline (1 connection, no request state, chunk, slot or "
              "buffer held)")
    finally:
        for h in holders:
            h.kill()
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
