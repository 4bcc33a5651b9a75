#!/usr/bin/env python3
"""HTTPS beside nginx: ringserve-http (uring and epoll) and nginx (one worker), each pinned to
the same CPU with the same ECDSA P-256 certificate and TLS 1.3, under wrk over https on the
other CPUs. Three loads: GET /plaintext at depth 1 and pipelined 16 deep on 64 kept
connections, and a new connection (a full handshake) per request on 16 connections. Reports
requests/s and the server's CPU time per request (from /proc/PID/stat), the median of the
rounds, and the ratios to nginx.

    python3 perf/tls_bench.py [--bin build/bin] [--seconds 5] [--rounds 3]
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import NGINX_CONF as NGINX_HTTP_CONF  # noqa: E402
from bench import cpu_layout, free_port  # noqa: E402

# bench.py's nginx, serving TLS: the same certificate and versions as ringserve, no session
# cache (tickets only, as ringserve).
NGINX_CONF = NGINX_HTTP_CONF.replace(
    "  server {{\n",
    "  ssl_protocols TLSv1.2 TLSv1.3;\n  ssl_certificate {cert};\n"
    "  ssl_certificate_key {key};\n  ssl_session_cache off;\n  server {{\n").replace(
        " reuseport backlog", " ssl reuseport backlog")


def ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def wait_port(port, bound_s=10):
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def start_ringserve(bin_dir, backend, cpu, cert, key):
    port = free_port()
    proc = subprocess.Popen(
        ["taskset", "-c", cpu, str(Path(bin_dir) / "ringserve-http"), "--port", str(port),
         "--backend", backend, "--tls-cert", cert, "--tls-key", key],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        raise RuntimeError(f"ringserve-http --backend {backend} did not start")
    return proc, port, [proc.pid]


def start_nginx(cpu, cert, key, tmp):
    port = free_port()
    conf = Path(tmp) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(mask=format(1 << int(cpu), "b"), tmp=tmp, cert=cert,
                                      key=key, port=port))
    proc = subprocess.Popen(["taskset", "-c", cpu, "nginx", "-c", str(conf), "-p", tmp, "-g",
                             "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port):
        raise RuntimeError("nginx did not start: " + Path(tmp, "error.log").read_text())
    time.sleep(0.2)
    return proc, port, children(proc.pid)  # the worker does the work


def wrk(port, load_cpus, seconds, connections, depth, close, tmp):
    script = Path(tmp) / f"load{depth}{close}.lua"
    header = ', {["Connection"] = "close"}' if close else ""
    script.write_text(
        "init = function(args)\n"
        "  local r = {}\n"
        f"  for i = 1, {depth} do r[i] = wrk.format(\"GET\", \"/plaintext\"{header}) end\n"
        "  req = table.concat(r)\n"
        "end\n"
        "request = function() return req end\n")
    out = subprocess.run(["taskset", "-c", load_cpus, "wrk", "-t1", f"-c{connections}",
                          f"-d{seconds}s", "-s", str(script), f"https://127.0.0.1:{port}/"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Socket errors: (.*)|Non-2xx or 3xx responses: (\d+)", out)
    return (int(m.group(1)) if m else 0), (errors.group(0) if errors else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default=str(Path(__file__).resolve().parent.parent / "build" /
                                             "bin"))
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server_cpu, load_cpus, _ = cpu_layout()
    loads = [("depth 1, 64 connections", 64, 1, False),
             ("depth 16, 64 connections", 64, 16, False),
             ("new connection per request, 16 connections", 16, 1, True)]
    servers = ["uring", "epoll", "nginx"]
    results = {}  # (server, load) -> [(rps, us per request)]
    with tempfile.TemporaryDirectory(prefix="rs-tls-bench-") as tmp:
        cert, key = f"{tmp}/cert.pem", f"{tmp}/key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
        os.chmod(key, 0o644)
        for r in range(args.rounds):
            order = servers[r % 3:] + servers[:r % 3]
            for name in order:
                if name == "nginx":
                    proc, port, pids = start_nginx(server_cpu, cert, key, tmp)
                else:
                    proc, port, pids = start_ringserve(args.bin, name, server_cpu, cert, key)
                try:
                    for label, conns, depth, close in loads:
                        t0 = sum(ticks(p) for p in pids)
                        done, errors = wrk(port, load_cpus, args.seconds, conns, depth, close, tmp)
                        cpu_s = (sum(ticks(p) for p in pids) - t0) / os.sysconf("SC_CLK_TCK")
                        us = 1e6 * cpu_s / done if done else float("nan")
                        results.setdefault((name, label), []).append((done / args.seconds, us))
                        print(f"round {r + 1} {name:6} {label}: {done / args.seconds:9.0f} req/s, "
                              f"{us:6.2f} us CPU per request {errors}", flush=True)
                finally:
                    proc.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
    print(f"\nmedians of {args.rounds} rounds (server on CPU {server_cpu}, wrk on {load_cpus}):")
    print("| load | server | requests/s | CPU per request | vs nginx |")
    print("|---|---|---|---|---|")
    for label, *_ in loads:
        nginx_us = sorted(u for _, u in results[("nginx", label)])[args.rounds // 2]
        for name in servers:
            rps = sorted(x for x, _ in results[(name, label)])[args.rounds // 2]
            us = sorted(u for _, u in results[(name, label)])[args.rounds // 2]
            print(f"| {label} | {name} | {rps:.0f} | {us:.2f} us | {us / nginx_us:.2f}x |")


if __name__ == "__main__":
    main()
