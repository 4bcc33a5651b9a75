#!/usr/bin/env python3
"""Memory per idle keep-alive connection, measured as the lab measures it.

One warm-up request, then N idle connections, then the change in the server's VmRSS 1 s later,
divided by N; then one request on each of them and the change again. Beside each, the same
change as the server's pools account for it in /metrics: the connection objects
(ringserve_connection_bytes), the sessions (ringserve_http_session_bytes) and the request
states made (ringserve_http_request_state_bytes). Run from the repository root after a build:

    python3 perf/idle_memory.py --connections 2000 -- --backend uring
    python3 perf/idle_memory.py --connections 500 -- --backend threads

Everything after "--" goes to ringserve-http. The open-file limit is raised to its hard limit.
"""
import argparse
import re
import socket
import subprocess
import sys
import time

from server_probe import metrics, raise_nofile, read_response, vm_rss_kib

REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"


def read_answer(sock):
    status, body = read_response(sock)
    if status != 200 or body != b"Hello, World!":
        raise RuntimeError(f"unexpected answer {status} {body!r}")


POOLS = ("ringserve_connection_bytes", "ringserve_http_session_bytes",
         "ringserve_http_request_state_bytes")


def pool_bytes(sock):
    """The bytes the pools hold, from /metrics on a kept connection (0 where a backend has no
    such pool, as threads has no connection slab)."""
    m = metrics(sock)
    return sum(m.get(name, 0) for name in POOLS)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--bin", default="build/bin/ringserve-http")
    parser.add_argument("server_args", nargs="*")
    args = parser.parse_args()
    raise_nofile()
    server = subprocess.Popen([args.bin, "--port", "0", *args.server_args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        match = re.search(r" port (\d+)", line)
        if not match:
            sys.exit(f"no start-up line: {line!r} {server.stderr.read()}")
        port = int(match.group(1))
        warm = socket.create_connection(("127.0.0.1", port))
        warm.sendall(REQUEST)
        read_answer(warm)
        time.sleep(1)
        base = vm_rss_kib(server.pid)
        base_pools = pool_bytes(warm)
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.connections)]
        time.sleep(1)
        idle = vm_rss_kib(server.pid)
        idle_pools = pool_bytes(warm)
        for s in socks:
            s.sendall(REQUEST)
        for s in socks:
            read_answer(s)
        time.sleep(1)
        after = vm_rss_kib(server.pid)
        after_pools = pool_bytes(warm)
        n = args.connections
        print(f"{' '.join(args.server_args) or 'defaults'}: {n} connections: "
              f"idle {(idle - base) * 1024 / n:.0f} B each "
              f"(pools: {(idle_pools - base_pools) / n:.0f} B), "
              f"after one request each {(after - base) * 1024 / n:.0f} B each "
              f"(pools: {(after_pools - base_pools) / n:.0f} B)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
