#!/usr/bin/env python3
"""Two builds of ringserve side by side: what a change did to CPU per request.

Runs the same workloads on build A and build B (and nginx, the fixed peer), interleaved round
after round with the order of A and B swapped every round, so the machine's drift hits both
alike. Prints per workload and backend the median server CPU per request, requests/s and system
calls per request of each build, B/A, and each build's ratio to nginx (medians over rounds of
the ratio within a round).

Usage: perf/compare_builds.py --a OLD/build/bin --b build/bin [--rounds 5] [--seconds 5]
The server runs on CPU 0 and the load on the others, as in perf/bench.py, whose pieces it uses.
"""
import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (perf/bench.py)

HTTP = [("plaintext c=64", "/plaintext", 64, 1), ("plaintext c=256", "/plaintext", 256, 1),
        ("plaintext c=256 pipelined 16", "/plaintext", 256, 16)]
ECHO = [("echo 128 B c=64", 64, 128)]
BACKENDS = ("uring", "epoll")
KEYS = ("cpu_us", "rps", "syscalls_per_req")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="bin directory of build A")
    parser.add_argument("--b", type=Path, required=True, help="bin directory of build B")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    bench.raise_fd_limit()
    server_cpu, load_cpus, load_threads = bench.cpu_layout()
    tmp = tempfile.mkdtemp(prefix="rs-compare-")
    # results[(workload, server)] = list of rows, one per round
    results = {}

    def run(server, workload, load):
        server.start()
        try:
            row = bench.measure(server, lambda: load(server), server_cpu, tmp)
        finally:
            server.stop()
        results.setdefault((workload, server.name), []).append(row)
        bench.log(f"{workload:30} {server.name:8} {bench.fmt_row(row)}")

    for round_no in range(args.rounds):
        builds = [("A", args.a), ("B", args.b)]
        if round_no % 2 == 1:
            builds.reverse()
        for name, path, conns, depth in HTTP:
            def http_load(s, path=path, conns=conns, depth=depth):
                return bench.wrk_load(s.port, path, conns, args.seconds, depth, load_threads,
                                      load_cpus, tmp)
            run(bench.Nginx(server_cpu), name, http_load)
            for label, bin_dir in builds:
                for backend in BACKENDS:
                    run(bench.Ringserve(bin_dir / "ringserve-http", backend, server_cpu, "http",
                                        label=f"{backend}-{label}"), name, http_load)
        for name, conns, size in ECHO:
            def echo_load(s, conns=conns, size=size):
                return bench.echo_load(args.b / "echo-load", s.port, conns, args.seconds, size,
                                       load_cpus)
            for label, bin_dir in builds:
                for backend in BACKENDS:
                    run(bench.Ringserve(bin_dir / "ringserve-echo", backend, server_cpu, "echo",
                                        label=f"{backend}-{label}"), name, echo_load)

    def med(workload, server, key):
        values = [r.get(key) for r in results.get((workload, server), []) if r.get(key)]
        return bench.median(values) if values else None

    def med_ratio(workload, a, b, key):
        pairs = zip(results.get((workload, a), []), results.get((workload, b), []))
        values = [x[key] / y[key] for x, y in pairs if x.get(key) and y.get(key)]
        return bench.median(values) if values else None

    print(f"\n{args.rounds} rounds of {args.seconds} s; medians. A = {args.a}, B = {args.b}")
    print(f"{'workload':30} {'backend':7} {'CPU/req A':>10} {'CPU/req B':>10} {'B/A':>6} "
          f"{'req/s B/A':>9} {'sys/req A':>9} {'sys/req B':>9} {'A/nginx':>8} {'B/nginx':>8}")
    for workload in [w[0] for w in HTTP] + [w[0] for w in ECHO]:
        for backend in BACKENDS:
            a, b = f"{backend}-A", f"{backend}-B"
            cpu_a, cpu_b = med(workload, a, "cpu_us"), med(workload, b, "cpu_us")
            print(f"{workload:30} {backend:7} {bench.num(cpu_a, 2):>10} {bench.num(cpu_b, 2):>10} "
                  f"{bench.num(med_ratio(workload, b, a, 'cpu_us'), 3):>6} "
                  f"{bench.num(med_ratio(workload, b, a, 'rps'), 3):>9} "
                  f"{bench.num(med(workload, a, 'syscalls_per_req'), 3):>9} "
                  f"{bench.num(med(workload, b, 'syscalls_per_req'), 3):>9} "
                  f"{bench.num(med_ratio(workload, a, 'nginx', 'cpu_us'), 3):>8} "
                  f"{bench.num(med_ratio(workload, b, 'nginx', 'cpu_us'), 3):>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
