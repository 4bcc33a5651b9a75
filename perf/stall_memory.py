#!/usr/bin/env python3
"""Memory per stalled connection: clients that send and never read.

Two loads, each on a fresh server, with N clients:
- flood: each pipelines `--requests` GET /plaintext and reads nothing;
- file: each asks for a 64 MiB file below a temporary --root and reads nothing.
After the server's output and input counters stop moving (it has paused every connection), the
change in its VmRSS divided by N is printed beside the change the pools account for
(output chunks held: ringserve_pool_chunks x 16 KiB). Then the clients leave, and the RSS is read
again once the loops have given the free chunks' memory back (a chunk unused for a second is
released). Run from the repository root after a build:

    python3 perf/stall_memory.py --clients 50 -- --backend uring
    python3 perf/stall_memory.py --clients 50 -- --backend epoll --max-queued-output-bytes 1048576

Everything after "--" goes to ringserve-http.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

import server_probe
from server_probe import raise_nofile, vm_rss_kib

CHUNK_BYTES = 16 << 10


def metrics(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        return server_probe.metrics(s)


def settle(port, bound_s=20):
    """Waits until the server's bytes in and out stop moving (every connection paused)."""
    last = None
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        m = metrics(port)
        now = (m.get("ringserve_received_bytes_total"), m.get("ringserve_sent_bytes_total"))
        if now == last:
            return m
        last = now
        time.sleep(0.5)
    return metrics(port)


def run(args, load, extra):
    # /metrics from a listener of its own: with --root the serving port does not answer it.
    server = subprocess.Popen([args.bin, "--port", "0", "--metrics-listen", "127.0.0.1:0", *extra,
                               *args.server_args],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    socks = []
    try:
        line = server.stdout.readline()
        match = re.search(r" port (\d+)", line)
        if not match:
            sys.exit("the server did not start")
        port = int(match.group(1))
        mport = server_probe.metrics_port(line)
        metrics(mport)  # warm-up
        time.sleep(0.5)
        base = vm_rss_kib(server.pid)
        base_chunks = metrics(mport)["ringserve_pool_chunks"]
        for _ in range(args.clients):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            s.setblocking(False)
            if load == "flood":
                data = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n" * args.requests
            else:
                data = b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
            try:
                s.send(data)  # as much as the socket takes: the rest is never sent
            except BlockingIOError:
                pass
            socks.append(s)
        m = settle(mport)
        rss = (vm_rss_kib(server.pid) - base) * 1024 / args.clients
        chunks = (m["ringserve_pool_chunks"] - base_chunks) * CHUNK_BYTES / args.clients
        print(f"{load:6} {' '.join(args.server_args) or 'defaults'}: {args.clients} clients: "
              f"{rss / 1024:.0f} KB of RSS each, {chunks / 1024:.0f} KB of output chunks each")
        # The load passes: the clients go, and the loops give the chunks' memory back over the
        # next seconds (a chunk free for a whole second is released, a bounded number a second).
        for s in socks:
            s.close()
        socks = []
        peak = vm_rss_kib(server.pid)
        start = time.monotonic()
        while time.monotonic() - start < 60:
            m = metrics(mport)
            # The /metrics requests that ask keep a chunk or two in use.
            if m["ringserve_pool_chunks"] <= base_chunks and m.get("ringserve_pool_chunks_free",
                                                                   0) <= 2:
                break
            time.sleep(0.2)
        after = vm_rss_kib(server.pid)
        print(f"{load:6} after the clients left: RSS {peak / 1024:.1f} MB -> {after / 1024:.1f} MB "
              f"in {time.monotonic() - start:.1f} s (baseline {base / 1024:.1f} MB; "
              f"{m.get('ringserve_pool_chunks_released', 0):.0f} chunks released)")
    finally:
        for s in socks:
            s.close()
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200000)
    parser.add_argument("--bin", default="build/bin/ringserve-http")
    parser.add_argument("server_args", nargs="*")
    args = parser.parse_args()
    raise_nofile()
    run(args, "flood", [])
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.truncate(64 << 20)
        run(args, "file", ["--root", root])


if __name__ == "__main__":
    main()
