"""The perf lab's report: the Markdown page and JSON file of a run (perf/bench.py makes the rows).

A row is one run of one cell: a flat dict with workload, server, connections, depth, round,
section ("main", "https", "knobs", "memory"), failed and failure, and the figures. Every table
gives the median over the rounds' runs that did not fail and their range, and every ratio is
taken within a round and then the median over rounds, so the machine's drift from minute to
minute cancels instead of landing on one server. Failed runs are listed, never averaged in.
Imported; it does no work at import time."""

import datetime
import json
import socket

from lab_provenance import provenance_lines

COLUMNS = [("req/s", "rps", 0), ("p50 µs", "p50_us", 0), ("p99 µs", "p99_us", 0),
           ("CPU µs/req", "cpu_us", 2), ("user", "cpu_user_us", 2), ("sys", "cpu_sys_us", 2),
           ("syscalls/req", "syscalls_per_req", 3)]

# Issue 11's bounds on CPU per request: each backend against its model's floor, by depth, and
# against nginx with pipelining.
FLOOR_BOUND = {1: 1.08, 16: 1.3}
NGINX_BOUND_PIPELINED = 0.10

# Issue 13's targets against nginx in the same run: (figure, bound); CPU per request at most
# the bound times nginx's, handshakes (requests) per second at least the bound times nginx's.
HTTPS_TARGETS = {"https plaintext c=64": ("cpu_us", 0.95),
                 "https plaintext c=64 pipelined 16": ("cpu_us", 0.3),
                 "https handshake X25519 c=16": ("rps", 1.0),
                 "https handshake P-256 c=16": ("rps", 1.0)}

KNOB_BASELINE = "uring knob baseline"


# ---------------------------------------------------------------------------- figures

def num(v, digits=1):
    """A figure for a table, "-" where there is none."""
    return "-" if v is None else f"{v:.{digits}f}"


def median(values):
    """The median of the values that are there (None ignored), or None."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def good(rows):
    """The runs that count: a failed run is reported, never part of a median or a ratio."""
    return [r for r in rows if not r.get("failed")]


def section(rows, name):
    """The rows of one report section (rows from before sections were named are "main")."""
    return [r for r in rows if r.get("section", "main") == name]


def runs_of(rows, workload, server):
    """The runs of one cell."""
    return [r for r in rows if r["workload"] == workload and r["server"] == server]


def cells(rows):
    """(workload, server) pairs in the order they first ran."""
    return list(dict.fromkeys((r["workload"], r["server"]) for r in rows))


def spread(runs, key, digits):
    """The median of key over the runs that did not fail, with their range when there are
    several: `9.37 (9.10–9.80)`."""
    values = [r.get(key) for r in good(runs) if r.get(key) is not None]
    if not values:
        return "-"
    text = num(median(values), digits)
    if len(values) > 1:
        text += f" ({num(min(values), digits)}–{num(max(values), digits)})"
    return text


def count_check(r):
    """ok when the server answered what the client counted, plus at most what was still in
    flight when the client stopped counting (one batch per connection); exactly what it
    counted for perf/http-load, which drains every answer before it stops."""
    client, server = r.get("requests_checked", r.get("requests")), r.get("server_requests")
    if server is None or client is None:
        return "n/a"
    in_flight = 0 if r.get("client") == "http-load" else (
        r.get("connections", 0) * r.get("depth", 1))
    return "ok" if 0 <= server - client <= in_flight else f"server {server}, client {client}"


def ratio(rows, workload, a, b, key):
    """a/b on key for workload among rows (one run of each), or None."""
    ra = next((r for r in good(rows) if r["workload"] == workload and r["server"] == a), None)
    rb = next((r for r in good(rows) if r["workload"] == workload and r["server"] == b), None)
    if not ra or not rb or not ra.get(key) or not rb.get(key):
        return None
    return ra[key] / rb[key]


def round_ratio(rows, workload, a, b, key):
    """The median over rounds of a/b within each round (rows without a round are round 0)."""
    rounds = dict.fromkeys(r.get("round", 0) for r in rows if r["workload"] == workload)
    return median(ratio([r for r in rows if r.get("round", 0) == n], workload, a, b, key)
                  for n in rounds)


def rounds_text(rows, workload):
    """How many rounds a workload's ratios come from, for the reader."""
    n = len({r.get("round", 0) for r in good(rows) if r["workload"] == workload})
    return "one run" if n == 1 else f"median of {n} rounds"


def table(header, lines):
    """A Markdown table; a | inside a cell is escaped so it cannot split the cell."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(str(c).replace("|", "&#124;") for c in line) + " |" for line in lines]


# ---------------------------------------------------------------------------- sections

def main_lines(rows):
    """One line per (workload, server) of the main section: medians and ranges, runs that
    counted out of runs made."""
    lines = []
    for w, s in cells(rows):
        runs = runs_of(rows, w, s)
        lines.append([w, s] + [spread(runs, key, d) for _, key, d in COLUMNS] +
                     [f"{len(good(runs))}/{len(runs)}"])
    out = table(["workload", "server"] + [c[0] for c in COLUMNS] + ["runs ok"], lines)
    if any(r.get("latency_note") for r in rows):
        out += ["", "Pipelined rows have no latency: wrk times a pipelined batch as one request "
                "but counts every response, so its percentiles are meaningless there."]
    return out


def ratio_lines(rows):
    """uring against nginx, epoll and threads on each workload: CPU per request and req/s."""
    out = []
    for w in dict.fromkeys(r["workload"] for r in rows):
        parts = []
        for other in ("nginx", "epoll", "threads"):
            cpu = round_ratio(rows, w, "uring", other, "cpu_us")
            rps = round_ratio(rows, w, "uring", other, "rps")
            if cpu is not None:
                parts.append(f"CPU/req uring/{other} = {cpu:.2f}" +
                             (f", req/s uring/{other} = {rps:.2f}" if rps else ""))
        if parts:
            out.append(f"- {w} ({rounds_text(rows, w)}): " + "; ".join(parts))
    return ["", "## Ratios", "", "Taken within each round, then the median over rounds."] + (
        [""] + out if out else ["", "None: no workload ran on uring and another server."])


def floor_lines(rows):
    """How far each event-loop backend is from the floor of its model, per plaintext load."""
    out = []
    for w in dict.fromkeys(r["workload"] for r in rows if r["server"].endswith(" floor")):
        depth = next(r["depth"] for r in rows if r["workload"] == w)
        for model in ("uring", "epoll"):
            parts = []
            floor = round_ratio(rows, w, model, f"{model} floor", "cpu_us")
            if floor is not None:
                bound = FLOOR_BOUND.get(depth)
                verdict = "" if bound is None else (
                    f" (bound {bound}: {'met' if floor <= bound else 'missed'})")
                parts.append(f"CPU/req {model}/{model} floor = {floor:.2f}{verdict}")
            nginx = round_ratio(rows, w, model, "nginx", "cpu_us")
            if nginx is not None and depth > 1:
                verdict = "met" if nginx <= NGINX_BOUND_PIPELINED else "missed"
                parts.append(f"{model}/nginx = {nginx:.2f} (bound {NGINX_BOUND_PIPELINED}: "
                             f"{verdict})")
            if parts:
                out.append(f"- {w} ({rounds_text(rows, w)}): " + "; ".join(parts))
    if not out:
        return []
    return ["", "## Floors", "",
            "Each event-loop backend against the least work its I/O model can do "
            "(perf/floors: a canned answer per request end, one send per connection per "
            "turn, no parsing), in the same rounds as the backends and nginx; a ratio is the "
            "median over rounds of the ratio within each."] + [""] + out


def static_lines(rows, meta):
    """What the static file rows read from the disk, and how each server was set up."""
    static = [r for r in rows if r.get("file_bytes")]
    if not static:
        return []
    lines = []
    for w, s in cells(static):
        runs = good(runs_of(static, w, s))
        served = [r["file_bytes"] * r["requests"] for r in runs if r.get("requests")]
        read = [r.get("disk_read_bytes") for r in runs]
        share = median(b / n for b, n in zip(read, served) if b is not None and n)
        lines.append([w, s, spread(runs, "rps", 0), spread(runs, "cpu_us", 2),
                      num(median(read) / 2**20 if median(read) is not None else None, 1),
                      "-" if share is None else f"{share:.1%}"])
    cold = meta.get("cold_files")
    return ["", "## Static files", "",
            "ringserve with `--root DIR` (its demo routes off, /metrics on a listener of its "
            "own), nginx with the same root and " +
            ", ".join(f"`{d.strip()}`" for d in meta.get("nginx_static", "").splitlines()) +
            " (open_file_cache off, as ringserve opens a file per request too). "
            + (f"The cold set is {cold} files of 64 KiB, every one evicted from the page cache "
               "(posix_fadvise DONTNEED) before each run, and a wrk script asks for them in "
               "sequence, each once, the run ending when all were asked for or its time is up. "
               if cold else "") +
            "`disk MiB` is what the server made the kernel read from storage during the run "
            "(read_bytes of /proc/PID/io, the median run), and `from disk` that against the "
            "bytes it served: near 100% on the cold rows shows they really read the disk, near "
            "0 on the hot ones that they were served from the page cache.", ""] + table(
        ["workload", "server", "req/s", "CPU µs/req", "disk MiB", "from disk"], lines)


def memory_lines(rows):
    """RSS per idle connection, by server and connection count."""
    memory = section(rows, "memory")
    if not memory:
        return []
    lines = []
    for w, s in cells(memory):
        runs = runs_of(memory, w, s)
        lines.append([w, s, spread(runs, "rss_per_conn_bytes", 0),
                      spread(runs, "rss_per_conn_after_request_bytes", 0),
                      spread(runs, "rss_base_kib", 0), f"{len(good(runs))}/{len(runs)}"])
    return ["", "## Memory per connection", "",
            "One method on every server: one warm-up request, then N connections opened and "
            "left idle (no request yet), and once the server holds them all (its descriptor "
            "count) the change in VmRSS 1 s later, summed over its processes (nginx: master and "
            "worker), divided by N; then one request on each and the change again "
            "(`after a request`). ringserve runs with `--header-timeout-ms 60000` here, as "
            "nginx's client_header_timeout is 60 s, so no idle connection is closed while the "
            "others open (perf/idle_memory.py).", ""] + table(
        ["workload", "server", "B/conn idle", "B/conn after a request", "base RSS KiB",
         "runs ok"], lines)


def access_log_lines(rows):
    """How each server logs, and how many lines each run wrote against what it served."""
    logged = [r for r in good(rows) if "log_lines" in r]
    if not logged:
        return []
    out = []
    for w, s in cells(logged):
        runs = runs_of(logged, w, s)
        beyond = median(r["log_lines"] - r["server_requests"] for r in runs
                        if r.get("server_requests") is not None)
        out.append(f"- {w} / {s}: {num(median(r['log_lines'] for r in runs), 0)} lines a "
                   f"run, the requests served and {num(beyond, 0)} (the lab's own count "
                   "requests, logged too; fewer lines would be lines dropped)")
    return ["", "## Access log", "",
            "ringserve `--access-log FILE` (combined format plus the request time in µs): each "
            "loop formats its lines into its own buffer and writes them once per loop turn (a "
            "ring write, or write(2)). nginx `access_log FILE combined buffer=64k flush=1s`: "
            "the predefined combined format, written when 64 KiB have gathered or a second "
            "after the first line. Both files are on the same disk.", ""] + out


def churn_lines(rows):
    """How often the churn rows really opened a connection."""
    churned = [r for r in good(rows) if r.get("connections_opened")]
    if not churned:
        return []
    out = [f"- {w} / {s}: {num(median(r['connections_opened'] for r in runs), 0)} "
           f"connections opened a run, one per "
           f"{num(median(r['requests'] / r['connections_opened'] for r in runs), 1)} requests"
           for w, s in cells(churned) for runs in [runs_of(churned, w, s)]]
    return ["", "## Connection churn", "",
            "perf/http-load in a closed loop (`--rate 0`), each connection's tenth request "
            "saying `Connection: close` and a new connection taking its place after the "
            "answer (`--churn 10`); CPU and system calls per request include the accepts and "
            "closes.", ""] + out


def https_lines(rows, meta):
    """The HTTPS table: medians over rounds, each ringserve backend against nginx and its
    target."""
    https = section(rows, "https")
    if not https:
        return []
    ktls = ", ".join(sorted({r["ktls"] for r in https if r.get("ktls")})) or "not reported"
    out = ["", "## HTTPS", "",
           "ringserve-http and nginx (one worker) with the same ECDSA P-256 certificate, made "
           f"for the run, and TLS 1.3 with {meta.get('https_suite')} pinned on both servers and "
           "on the client, no session resumption on either (`--tls-ticket-rotate-s 0`; "
           "`ssl_session_cache off`, `ssl_session_tickets off`), wrk over https. The client "
           "picks the key exchange: wrk runs with an OpenSSL configuration (`OPENSSL_CONF`) "
           "that offers the row's one group (X25519 on the kept connections), where both "
           "servers offer X25519, P-256 and P-384. The handshake rows ask for `Connection: "
           "close`: every request is a new connection and a full handshake (`full hs/req` is "
           "ringserve's own count; resumed handshakes are not in it, and `checks` names any). "
           "In the same rounds as the rest: every load on each server back to back, in an "
           "order that rotates from round to round; a ratio is the median over rounds of the "
           "ratio within each round. Targets (issue 13): CPU per request at most 0.95x nginx's "
           "at depth 1 and 0.3x at depth 16, handshakes per second at least nginx's. "
           "ringserve's kTLS: " + ktls + ".", ""]
    lines = []
    for w, server in cells(https):
        runs = runs_of(https, w, server)
        figures = [spread(runs, key, d) for key, d in (
            ("rps", 0), ("cpu_us", 2), ("cpu_user_us", 2), ("cpu_sys_us", 2),
            ("syscalls_per_req", 3), ("full_handshakes_per_req", 3))]
        cpu = rps = None
        target = "-"
        if server != "nginx" and w in HTTPS_TARGETS:
            cpu, rps = (round_ratio(https, w, server, "nginx", key) for key in ("cpu_us", "rps"))
            key, bound = HTTPS_TARGETS[w]
            value = cpu if key == "cpu_us" else rps
            if value is not None:
                met = value <= bound if key == "cpu_us" else value >= bound
                target = (f"{'CPU/req ≤' if key == 'cpu_us' else 'req/s ≥'} {bound}x: "
                          f"{'met' if met else 'missed'}")
        problems = [f"{r['resumed_per_req']:.3f} resumed/req" for r in good(runs)
                    if r.get("resumed_per_req")]
        lines.append([w, server] + figures + [num(cpu, 2), num(rps, 2), target,
                                              "; ".join(problems) or "ok",
                                              f"{len(good(runs))}/{len(runs)}"])
    return out + table(["workload", "server", "req/s", "CPU µs/req", "user", "sys",
                        "syscalls/req", "full hs/req", "CPU/req vs nginx", "req/s vs nginx",
                        "target", "checks", "runs ok"], lines)


def knob_summary(knob_rows):
    """One line per (knob, workload): medians over rounds, ratios to the same round's baseline."""
    out = []
    knob_rows = good(knob_rows)
    keys = cells(knob_rows)
    keys.sort(key=lambda k: (k[0], k[1] != KNOB_BASELINE))
    for workload, server in keys:
        runs = runs_of(knob_rows, workload, server)
        cpu_ratios, rps_ratios = [], []
        for r in runs:
            bases = [b for b in runs_of(knob_rows, workload, KNOB_BASELINE)
                     if b.get("round") == r.get("round")]
            for key, ratios in (("cpu_us", cpu_ratios), ("rps", rps_ratios)):
                level = [b[key] for b in bases if b.get(key)]
                if level and r.get(key):
                    ratios.append(r[key] / (sum(level) / len(level)))
        out.append({"workload": workload, "server": server,
                    "cpu_us": median(r.get("cpu_us") for r in runs),
                    "cpu_ratio": median(cpu_ratios), "rps_ratio": median(rps_ratios),
                    "syscalls_per_req": median(r.get("syscalls_per_req") for r in runs),
                    "bytes_per_recv": median(r.get("bytes_per_recv") for r in runs),
                    "setup": runs[0].get("setup")})
    return out


def knob_lines(rows, meta):
    """The ring knob table (see knob_summary)."""
    knob_rows = section(rows, "knobs")
    if not knob_rows:
        return []
    labels = meta.get("knobs", {})
    lines = [[r["server"], f"`{labels.get(r['server'], '?')}`", r["workload"],
              num(r["cpu_us"], 2), num(r["cpu_ratio"], 2), num(r["syscalls_per_req"], 3),
              num(r["rps_ratio"], 2), num(r["bytes_per_recv"], 0), r["setup"] or "-"]
             for r in knob_summary(knob_rows)]
    return ["", "## Ring knobs", "",
            f"Each flag on its own, in the run's {meta.get('rounds', 1)} round(s) of "
            f"{meta.get('seconds')} s runs: per workload a default uring run, every flag (in "
            "an order that rotates), a default run again. `vs baseline` is the median over "
            "rounds of the ratio to the mean of the two default runs of the same round (below "
            "1: the flag saves CPU per request); the other figures are medians. `in force` is "
            "what the server reported setting up, so a flag the kernel cannot honour shows as "
            "such.", ""] + table(
        ["knob", "flags", "workload", "CPU µs/req", "vs baseline", "syscalls/req",
         "req/s vs baseline", "bytes/recv", "in force"], lines)


def skipped_lines(meta):
    """The cells not run, with why."""
    skipped = meta.get("skipped", [])
    if not skipped:
        return []
    return ["", "## Not run", ""] + [f"- {s['workload']} / {s['server']}: {s['reason']}"
                                     for s in skipped]


def failed_lines(rows):
    """Every failed run with its reason ("None." says the check was made)."""
    failed = [r for r in rows if r.get("failed")]
    if not failed:
        return ["", "## Failed runs", "", "None."]
    return ["", "## Failed runs", "",
            "Not in any median or ratio above."] + [""] + [
        f"- {r['workload']} / {r['server']}, round {r.get('round', 0)}: {r.get('failure')}"
        for r in failed]


def header_lines(meta, stamp, host):
    """The title, how the run was made, and its provenance."""
    planned, wall = meta.get("planned_s"), meta.get("wall_s")
    rounds = meta.get("rounds", 1)
    total = meta.get("total_s")
    if meta.get("mode") == "curves":  # how the sweeps ran is told with them
        return [f"# ringserve latency against load: {stamp} on {host}", "",
                f"Mode: curves, took {num(total or wall, 0)} s.", "",
                "## Provenance", ""] + provenance_lines(meta.get("provenance", {}))
    return [f"# ringserve perf lab: {stamp} on {host}", "",
            f"Mode: {meta.get('mode')}, {rounds} round(s) of {meta.get('seconds')} s runs "
            f"({meta.get('runs_per_round', '?')} runs a round, {meta.get('runs', '?')} in "
            f"all), planned {num(planned, 0)} s, took {num(wall, 0)} s"
            + (f" ({num(total, 0)} s with the latency sweeps)" if total else "") +
            ". Each round runs every "
            "workload on every server back to back, in an order that rotates from round to "
            f"round. Server on CPU {meta.get('server_cpu')}, load on CPUs "
            f"{meta.get('load_cpus')}. CPU per request from /proc/PID/stat (user+system), "
            "system calls per request from `perf stat -e raw_syscalls:sys_enter` on the "
            "server's CPU. A run fails (and is listed under Failed runs, never counted) when "
            "its server does not start, its load tool fails, any request errs, or the server's "
            "own count of requests (ringserve's /metrics, nginx's stub_status, the echo "
            "server's bytes, a floor's count at exit) disagrees with the client's.", "",
            "## Provenance", ""] + provenance_lines(
        meta.get("provenance", {}))


def write_report(rows, meta, out_dir, charts=None):
    """Writes <date>-<host>.json and .md (and charts(rows, base, meta) where given) under out_dir;
    returns the .md path. A second run of the day gets -run2, -run3: the first is kept."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d")
    host = socket.gethostname()
    # A curves-only run's files are named so: the day's full run keeps its own names.
    name = f"{stamp}-{host}" + ("-curves" if meta.get("mode") == "curves" else "")
    base = out_dir / name
    n = 2
    while base.with_suffix(".md").exists():
        base = out_dir / f"{name}-run{n}"
        n += 1
    base.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    main = section(rows, "main")
    lines = header_lines(meta, stamp, host)
    if main or meta.get("mode") != "curves":
        lines += ["", "## Results", ""] + (main_lines(main) if main else ["No main runs."])
    if meta.get("mode") == "quick":
        lines += ["", "Quick mode: one-second runs to check that the lab works; use --full for "
                  "numbers worth quoting."]
    lines += ratio_lines(main) if main else []
    lines += floor_lines(main)
    lines += static_lines(main, meta)
    lines += access_log_lines(main)
    lines += churn_lines(main)
    lines += memory_lines(rows)
    lines += https_lines(rows, meta)
    lines += knob_lines(rows, meta)
    curves = section(rows, "curves")
    if curves:
        import lab_curves  # here: it imports bench, which imports this module
        lines += lab_curves.curve_lines(rows, meta)
    lines += skipped_lines(meta)
    lines += failed_lines(rows)
    # The charts' rows: the main cells (CPU, system calls, floors), memory, the curves.
    charted = good(main) + good(section(rows, "memory")) + good(curves)
    made = charts(charted, base, meta) if charts and charted else []
    if made:
        lines += ["", "## Charts", ""] + [f"![{c.stem}]({c.name})" for c in made]
    report = base.with_suffix(".md")
    report.write_text("\n".join(lines) + "\n")
    return report
