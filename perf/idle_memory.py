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
perf/bench.py's memory rows call idle_connection_memory() on every server, nginx included.
"""
import argparse
import re
import socket
import subprocess
import sys
import time

from server_probe import fd_count, metrics, raise_nofile, read_response, vm_rss_kib, wait_until

REQUEST = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
SETTLE_S = 1  # the method: RSS is read this long after the connections are all there


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


def idle_connection_memory(port, pids, connections, probe=None, bound_s=60):
    """The lab's one method for memory per connection, on any server answering GET /plaintext
    with "Hello, World!" on port, whose processes are pids (summed: nginx's master and worker):
    one warm-up request; the RSS; `connections` connections opened and left idle; once the
    server holds them all (its descriptors, so that no request of ours is counted or
    disturbs the pools) the RSS SETTLE_S later; one request on each; the RSS SETTLE_S later.

    Returns {"base_kib", "idle_kib", "after_kib"} and, with probe (a function of the warm-up
    connection, such as pool_bytes), {"base_probe", "idle_probe", "after_probe"}. Raises on a
    wrong answer or when the server does not take the connections within bound_s."""
    warm = socket.create_connection(("127.0.0.1", port))
    socks = []
    try:
        warm.sendall(REQUEST)
        read_answer(warm)
        time.sleep(SETTLE_S)
        result = {"base_kib": sum(vm_rss_kib(p) for p in pids)}
        held = sum(fd_count(p) for p in pids)
        if probe:
            result["base_probe"] = probe(warm)
        for _ in range(connections):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=bound_s))
        wait_until(f"the server to hold {connections} connections",
                   lambda: sum(fd_count(p) for p in pids), lambda n: n >= held + connections,
                   bound_s)
        time.sleep(SETTLE_S)
        result["idle_kib"] = sum(vm_rss_kib(p) for p in pids)
        if probe:
            result["idle_probe"] = probe(warm)
        for s in socks:
            s.sendall(REQUEST)
        for s in socks:
            read_answer(s)
        time.sleep(SETTLE_S)
        result["after_kib"] = sum(vm_rss_kib(p) for p in pids)
        if probe:
            result["after_probe"] = probe(warm)
        return result
    finally:
        for s in socks:
            s.close()
        warm.close()


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
        m = idle_connection_memory(int(match.group(1)), [server.pid], args.connections,
                                   pool_bytes)
        n = args.connections
        print(f"{' '.join(args.server_args) or 'defaults'}: {n} connections: "
              f"idle {(m['idle_kib'] - m['base_kib']) * 1024 / n:.0f} B each "
              f"(pools: {(m['idle_probe'] - m['base_probe']) / n:.0f} B), "
              f"after one request each {(m['after_kib'] - m['base_kib']) * 1024 / n:.0f} B each "
              f"(pools: {(m['after_probe'] - m['base_probe']) / n:.0f} B)")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
