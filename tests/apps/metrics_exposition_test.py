#!/usr/bin/env python3
"""GET /metrics read by a real exposition-format parser (prometheus_client's, Debian's
python3-prometheus-client) on one backend, after traffic of every kind (a file, a 404, /plaintext,
/json, /echo, /delay, a request the parser rejects): every family declares its type and a help
text of its own, counters end in _total and gauges do not, every histogram's buckets are
cumulative and end with +Inf equal to _count, the per-loop families carry a loop label, the
process_* families and ringserve_build_info say what they should, and no counter goes back
between two scrapes (on threads: across workers that ended in between). The server logs in
--access-log-format json meanwhile: every line is an object json.loads reads, with every field.

Usage: metrics_exposition_test.py BIN_DIR --backend uring|epoll|threads
Prints one line per check; exits 0 only when every check passed (77: no io_uring here).
"""
import argparse
import http.client
import json
import math
import os
import socket
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "perf"))
from server_probe import (  # noqa: E402
    ServerDidNotStart, check, metrics_port, parse_metrics, start_server, summary)

DEBIAN_PYTHON = "/usr/bin/python3"
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # python3-prometheus-client installs for Debian's interpreter, which may not be the first
    # python3 on PATH (pyenv): run there instead.
    if os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON) and \
            os.path.exists(DEBIAN_PYTHON):
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON, *sys.argv])
    print("FAIL prometheus_client is not installed: apt-get install python3-prometheus-client "
          "(scripts/setup.sh installs it)")
    sys.exit(1)

TIMEOUT_S = 30


def wait_until(what, probe, predicate, bound_s=TIMEOUT_S):
    """Calls probe until predicate(value) holds; returns the last value (a failed check when the
    bound passes first)."""
    deadline = time.monotonic() + bound_s
    while True:
        value = probe()
        if predicate(value):
            return value
        if time.monotonic() >= deadline:
            check(what, False, f"not within {bound_s} s")
            return value
        time.sleep(0.05)


def request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    conn.request(method, path, body=body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def scrape(port):
    status, body = request(port, "GET", "/metrics")
    assert status == 200, status
    return body.decode()


def traffic(port):
    """One of each kind of answer; returns the statuses in order."""
    statuses = [
        request(port, "GET", "/plaintext")[0],
        request(port, "GET", "/json")[0],
        request(port, "POST", "/echo", b"hello")[0],
        request(port, "GET", "/delay?ms=5")[0],
        request(port, "GET", "/file.txt")[0],
        request(port, "GET", "/missing.txt")[0],
    ]
    # A request line the parser rejects: 400 and close.
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as s:
        s.sendall(b"GET / HTTP/1.1 extra\r\nHost: t\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
        statuses.append(int(answer.split(b" ", 2)[1]) if answer else 0)
    return statuses


def check_families(text, backend, loops):
    families = {f.name: f for f in text_string_to_metric_families(text)}
    check("the parser found families", len(families) > 40, str(len(families)))
    declared = {}  # name as declared -> type, from the raw text
    helps = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            check(f"{name} declares its type once", name not in declared)
            declared[name] = kind
        elif line.startswith("# HELP "):
            _, _, name, *help_text = line.split(" ", 3)
            helps[name] = help_text[0] if help_text else ""
    for name, kind in declared.items():
        check(f"{name} has a known type", kind in ("counter", "gauge", "histogram"), kind)
        check(f"{name} has a help text", len(helps.get(name, "")) >= 10, helps.get(name, ""))
        if kind == "counter":
            check(f"counter {name} ends in _total", name.endswith("_total"))
        else:
            check(f"{kind} {name} does not end in _total", not name.endswith("_total"))
    by_help = {}
    for name, help_text in helps.items():
        by_help.setdefault(help_text, []).append(name)
    shared = [names for names in by_help.values() if len(names) > 1]
    check("no two families share a help text", not shared, str(shared))
    for family in families.values():
        check(f"{family.name} is typed", family.type in ("counter", "gauge", "histogram"),
              family.type)
        if family.type == "histogram":
            check_histogram(family)
    # Every sample line belongs to a declared family.
    orphans = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            base = name
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and declared.get(name[:-len(suffix)]) == "histogram":
                    base = name[:-len(suffix)]
            if base not in declared:
                orphans.add(name)
    check("every sample belongs to a declared family", not orphans, str(sorted(orphans)))

    # The loops' families: a series per loop.
    for name in ("ringserve_connections_open", "ringserve_accepted_total",
                 "ringserve_loop_wait_calls_total"):
        family = families.get(name[:-len("_total")] if name.endswith("_total") else name)
        labels = sorted(s.labels.get("loop") for s in family.samples) if family else []
        check(f"{name} has a series per loop", labels == [str(i) for i in range(loops)],
              str(labels))
    waits = parse_metrics(text).get("ringserve_loop_wait_calls_total", 0)
    check("the loops entered the kernel to wait", waits > 0, str(waits))
    ring_only = ["ringserve_cqes_reaped_total", "ringserve_sqes_submitted_total"]
    for name in ring_only:
        check(f"{name} is there on uring only", (name in declared) == (backend == "uring"))

    info = families["ringserve_build_info"].samples
    check("one ringserve_build_info sample, 1", len(info) == 1 and info[0].value == 1)
    labels = info[0].labels
    check("build_info names the backend", labels.get("backend") == backend, str(labels))
    check("build_info has the version", labels.get("version", "").count(".") == 2, str(labels))
    setup = labels.get("io_uring_setup", "")
    check("build_info says how the ring was set up (none off uring)",
          setup.startswith("io_uring") if backend == "uring" else setup == "none", setup)

    def value(name):
        samples = families[name].samples
        return samples[0].value if samples else None

    rss = value("process_resident_memory_bytes")
    check("process_resident_memory_bytes is some MiB", 1 << 20 < rss < 1 << 34, str(rss))
    check("process_virtual_memory_bytes >= resident", value("process_virtual_memory_bytes") >= rss)
    fds = value("process_open_fds")
    check("process_open_fds counts the listeners and more", fds >= 3, str(fds))
    check("process_max_fds >= open fds", value("process_max_fds") >= fds)
    start = value("process_start_time_seconds")
    check("process_start_time_seconds is within the last hour", time.time() - 3600 < start <=
          time.time() + 1, str(start))
    cpu = families["process_cpu_seconds"].samples[0].value
    check("process_cpu_seconds_total is a number of seconds", 0 <= cpu < 3600, str(cpu))
    return families


def check_histogram(family):
    series = {}
    for s in family.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        entry = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
        if s.name.endswith("_bucket"):
            entry["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_count"):
            entry["count"] = s.value
        elif s.name.endswith("_sum"):
            entry["sum"] = s.value
    for key, entry in series.items():
        what = f"{family.name}{dict(key)}"
        bounds = [b for b, _ in entry["buckets"]]
        counts = [c for _, c in entry["buckets"]]
        check(f"{what} buckets ascend and end at +Inf",
              bounds == sorted(bounds) and bounds and math.isinf(bounds[-1]), str(bounds))
        check(f"{what} buckets are cumulative", all(a <= b for a, b in zip(counts, counts[1:])),
              str(counts))
        check(f"{what} +Inf equals _count", counts and counts[-1] == entry["count"],
              f"{counts[-1:]} vs {entry['count']}")
        check(f"{what} has a _sum", entry["sum"] is not None and entry["sum"] >= 0)


def counter_samples(text):
    """{(sample name, labels): value} of every counter and histogram sample."""
    out = {}
    for family in text_string_to_metric_families(text):
        if family.type in ("counter", "histogram"):
            for s in family.samples:
                if not s.name.endswith("_created"):
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


JSON_FIELDS = {"time": str, "remote_addr": str, "method": str, "target": str, "protocol": str,
               "status": int, "bytes": int, "referer": str, "user_agent": str,
               "request_time_us": int}


def check_json_log(path, least):
    def read():
        with open(path, "rb") as f:
            return f.read().decode("utf-8").splitlines()
    lines = wait_until(f"{least} access log lines", read, lambda v: len(v) >= least)
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError as e:
            check("an access log line is JSON", False, f"{e}: {line!r}")
    check("every access log line has the fields, typed",
          all(set(e) == set(JSON_FIELDS) and
              all(isinstance(e[k], t) for k, t in JSON_FIELDS.items()) for e in entries))
    missing = [e for e in entries if e["target"] == "/missing.txt"]
    check("the 404 is logged", len(missing) == 1 and missing[0]["status"] == 404 and
          missing[0]["method"] == "GET" and missing[0]["protocol"] == "HTTP/1.1" and
          missing[0]["remote_addr"] == "127.0.0.1", str(missing))
    delay = [e for e in entries if e["target"] == "/delay?ms=5"]
    check("the /delay?ms=5 took at least 5000 us", delay and delay[0]["request_time_us"] >= 5000,
          str(delay))
    rejected = [e for e in entries if e["status"] == 400]
    check("the rejected line is logged as it came", rejected and
          rejected[0]["method"] == "GET" and rejected[0]["protocol"] == "extra", str(rejected))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("--backend", required=True)
    args = parser.parse_args()
    loops = 1 if args.backend == "threads" else 2
    extra = ["--thread-idle-timeout-ms", "100"] if args.backend == "threads" else \
        ["--threads", str(loops)]
    with tempfile.TemporaryDirectory(prefix="rs-metrics-") as root:
        with open(os.path.join(root, "file.txt"), "w") as f:
            f.write("a static file\n")
        try:
            log = os.path.join(root, "access.log")
            # The demo routes beside the files; with --root, /metrics on a listener of its own.
            server, port, line = start_server(
                os.path.join(args.bin_dir, "ringserve-http"),
                ["--backend", args.backend, "--root", root, "--demo-routes", "on",
                 "--metrics-listen", "127.0.0.1:0", "--access-log", log,
                 "--access-log-format", "json", *extra])
            scrape_port = metrics_port(line)
        except ServerDidNotStart as e:
            if args.backend == "uring" and "start with --backend epoll" in str(e):
                print(f"SKIP: no io_uring here ({str(e).splitlines()[-1]})")
                return 77
            raise
        try:
            statuses = traffic(port)
            check("the traffic got its answers", statuses == [200, 200, 200, 200, 200, 404, 400],
                  str(statuses))
            # Several connections at once, so that every loop serves some.
            for _ in range(4):
                socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
                for s in socks:
                    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                for s in socks:
                    while s.recv(4096):
                        pass
                    s.close()
            check_json_log(log, len(statuses) + 32)
            first = scrape(scrape_port)
            check_families(first, args.backend, loops)
            m = parse_metrics(first)
            check("404 counted by its status",
                  m.get('ringserve_http_responses_total{class="4xx"}', 0) >= 2 and
                  first.count('status="404"} 1\n') == 1)
            for route, least in (("static", 2), ("plaintext", 33), ("json", 1), ("echo", 1),
                                 ("delay", 1), ("other", 1)):
                n = m.get(f'ringserve_http_request_duration_seconds_count{{route="{route}"}}', 0)
                check(f"route {route} timed", n >= least, str(n))
            delay_sum = m.get('ringserve_http_request_duration_seconds_sum{route="delay"}', 0)
            check("the /delay?ms=5 took at least 5 ms", delay_sum >= 0.005, str(delay_sum))
            if args.backend == "threads":
                # Every worker ends after 100 ms idle: what they counted stays counted.
                wait_until("the workers to end", lambda: parse_metrics(scrape(scrape_port)),
                           lambda v: v.get("ringserve_worker_threads", 1) <= 1 and
                           v.get("ringserve_worker_threads_reaped_total", 0) >= 1)
            traffic(port)
            second = scrape(scrape_port)
            before, after = counter_samples(first), counter_samples(second)
            back = [k for k, v in before.items() if after.get(k, -1) < v]
            check("no counter went back between scrapes", not back, str(back[:5]))
            check("the second scrape counted more requests",
                  parse_metrics(second)["ringserve_http_requests_total"] >
                  parse_metrics(first)["ringserve_http_requests_total"])
        finally:
            server.terminate()
            server.wait(timeout=TIMEOUT_S)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
