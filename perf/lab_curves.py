#!/usr/bin/env python3
"""Latency against load: each backend and nginx under an open-loop load stepped up to and past
its saturation, to find where its latency turns up (its knee).

A closed-loop benchmark (wrk) only says how fast a server goes flat out, with latency read at
that one point, where every server queues. A reader choosing a server asks instead how much
load it takes before latency suffers. So for each server this finds the closed-loop saturation
briefly (perf/http-load --rate 0), then offers fixed rates below and past it with http-load's
open loop, which times every request from the moment it was due to be sent (no coordinated
omission), and records per step the offered and achieved rates, p50 to max, the server's CPU
per request (bench.measure: /proc/PID/stat and perf stat, as the lab's other cells) and whether
the server's own count agrees with the client's.

Run alone: python3 perf/lab_curves.py --bin build/bin --out perf/results [--quick]; the lab
(bench.py) can call run_curves(args, rows, meta) and curve_lines(rows, meta) for its report.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402
import lab_provenance  # noqa: E402
import lab_report  # noqa: E402
from lab_charts import in_order, write_charts  # noqa: E402

WORKLOAD = "curve plaintext c=64"
CONNECTIONS = 64
# Percent of the closed-loop saturation. Sparse at low load, where latency is flat and one
# step gives the reference p99; dense from 70 to 100, where the knee of a queueing server lies;
# one step past saturation (110) to show what overload does (achieved flattens, latency climbs
# with the backlog) rather than guess it.
STEPS = (10, 25, 50, 70, 80, 90, 95, 100, 110)
QUICK_STEPS = (10, 50, 90)
SERVERS = ("uring", "epoll", "threads", "nginx")
QUICK_SERVERS = ("uring", "nginx")
# The knee: the highest offered rate up to which every step got at least KNEE_ACHIEVED of its
# offered rate, with p99 at most KNEE_P99_FACTOR times the low-load p99 (low_load_p99()).
KNEE_ACHIEVED = 0.97
KNEE_P99_FACTOR = 5
# A sweep measures the client, not the server, when the server's CPU was under CLIENT_BUSY
# busy at saturation (the load generator could not drive it harder), or when a step up to and
# including the one that decides the knee had the generator itself behind: over LATE_SHARE of
# its requests late by http-load's own delay (its client_late_sends: due while a connection
# had room, or while its loop slept or worked past their time; not those that waited for the
# server to free a connection), or http-load's CPU over CLIENT_CPU_BUSY busy (no slack to keep
# the schedule). Such a sweep names no knee: it says it was client-limited, and where.
CLIENT_BUSY = 0.9
LATE_SHARE = 0.01
CLIENT_CPU_BUSY = 0.95
PERCENTILES = ("p50", "p90", "p99", "p999", "max")
ERROR_KEYS = ("errors", "connect_errors", "resets", "timeouts", "bad_responses", "stalls",
              "non_2xx")


# ---------------------------------------------------------------------------- settings

class Settings:
    """What a sweep runs, from lab_curves' own flags or from bench.py's (which has no curve
    flags: its quick mode gives the quick sweep, --full the whole one)."""

    def __init__(self, args):
        # bench.py: --curves alone or --all is the whole sweep; its quick mode the quick one.
        self.quick = getattr(args, "quick", False) or not (
            getattr(args, "full", True) or getattr(args, "curves", False))
        self.bin = Path(args.bin)
        self.http_load = self.bin / "http-load"
        self.seconds = getattr(args, "seconds", None) or (1 if self.quick else 5)
        self.warmup_s = 0.25 if self.quick else 1.0
        self.saturation_s = min(self.seconds, 2)
        self.timeout_s = 2 if self.quick else 5
        self.schedule = getattr(args, "schedule", None) or "poisson"
        # lab_curves' --rounds, else bench.py's (--curves --rounds 3), else one.
        self.rounds = (getattr(args, "curve_rounds", None) or getattr(args, "rounds", None)
                       or 1)
        servers = getattr(args, "servers", None)
        self.servers = servers.split(",") if servers else list(
            QUICK_SERVERS if self.quick else SERVERS)
        self.steps = parse_rates(getattr(args, "rates", None)) or [
            (pct, None) for pct in (QUICK_STEPS if self.quick else STEPS)]

    def as_meta(self):
        return {"workload": WORKLOAD, "connections": CONNECTIONS, "depth": 1,
                "schedule": self.schedule, "seconds": self.seconds, "warmup_s": self.warmup_s,
                "saturation_s": self.saturation_s, "rounds": self.rounds,
                "steps": [f"{pct}%" if pct is not None else f"{rate}/s"
                          for pct, rate in self.steps],
                "knee_rule": {"achieved_at_least": KNEE_ACHIEVED,
                              "p99_at_most_times_lowest": KNEE_P99_FACTOR}}


def parse_rates(text):
    """--rates: "10,50,90" (percent of saturation, "%" optional) or "5000/s,..." (req/s), as
    [(percent or None, req/s or None)]."""
    if not text:
        return None
    out = []
    for item in text.split(","):
        item = item.strip()
        if item.endswith("/s"):
            out.append((None, float(item[:-2])))
        else:
            out.append((float(item.rstrip("%")), None))
    return out


# ---------------------------------------------------------------------------- load

def http_load(s, port, rate, seconds, load_cpus):
    """One http-load run on /plaintext (rate 0: closed loop), as a bench.measure() result:
    "requests" is every response, warm-up included, since the server's CPU and its own count
    cover the warm-up too; "failure" says why the run gave nothing to trust."""
    started = time.monotonic()
    try:
        data = bench.run_http_load(s.http_load, port, "/plaintext", CONNECTIONS, seconds,
                                   load_cpus, rate=rate, schedule=s.schedule,
                                   warmup=s.warmup_s, timeout=s.timeout_s)
    except (RuntimeError, ValueError) as e:
        return {"requests": 0, "failure": str(e)}
    result = {"client": "http-load", "requests": data.get("responses_total"),
              "client_requests": data.get("requests"), "sent": data.get("sent"),
              "achieved_rps": data.get("achieved_rps"), "late_sends": data.get("late_sends"),
              # Due but never sent (still in the backlog at the end), and sent but never
              # answered (their connection failed): kept as http-load names them.
              "unsent": data.get("unsent"), "lost": data.get("lost"),
              "backlog_max": data.get("backlog_max"), "load_wall_s": time.monotonic() - started,
              "client_late_sends": data.get("client_late_sends"),
              "client_cpu_busy": data.get("client_cpu_busy"),
              **{f"latency_us_{p}": data.get(f"latency_us_{p}") for p in PERCENTILES},
              **{f"client_{k}": data.get(k) or 0 for k in ERROR_KEYS}}
    errors = [f"{k}={data[k]}" for k in ERROR_KEYS if data.get(k)]
    if not data.get("requests"):
        # Nothing measured (http-load exits 1): no latency to plot, whatever the counts say.
        errors.append("no response in the measured window")
    if errors:
        result["failure"] = ", ".join(errors)
    return result


def measured(server, s, rate, seconds, cpus, tmp):
    """bench.measure() around one http-load run: the server's CPU and system calls per
    request, its own count of requests, and how busy its CPU was (under 90% at saturation:
    the client, not the server, was the limit)."""
    server_cpu, load_cpus = cpus
    r = bench.measure(server, lambda: http_load(s, server.port, rate, seconds, load_cpus),
                      server_cpu, tmp)
    if r.get("cpu_us") is not None and r.get("load_wall_s"):
        r["server_cpu_busy"] = r["cpu_us"] * r["requests"] / 1e6 / r["load_wall_s"]
    return r


def step_row(server, s, round_no, pct, rate, r):
    """A curve row: the flat dict the report, the chart and the checker read."""
    row = {"workload": WORKLOAD, "section": "curves", "server": server, "round": round_no,
           "connections": CONNECTIONS, "depth": 1, "schedule": s.schedule,
           "step_pct": pct, "offered_rps": round(rate) if rate else rate, **r}
    row["errors"] = sum(row.get(f"client_{k}") or 0 for k in ERROR_KEYS)
    row["count"] = bench.count_check(row)
    problems = [row["failure"]] if row.get("failure") else []
    if not problems and row["count"] != "ok":
        problems.append(f"count: {row['count']}")
    if not problems and None in (row.get("achieved_rps"), row.get("latency_us_p99")):
        problems.append("no rate or latency from http-load")
    row["failure"] = "; ".join(problems) or None
    row["failed"] = bool(problems)
    return row


# ---------------------------------------------------------------------------- the sweep

def make_server(name, s, server_cpu):
    if name == "nginx":
        return bench.Nginx(server_cpu)
    return bench.Ringserve(s.bin / "ringserve-http", name, server_cpu, "http")


def sweep(name, s, round_no, saturation, cpus, tmp):
    """One server, one round: started once, its saturation found in the first round, then
    every step in rising order (the overload step last, so that its backlog cannot spill
    into the others). Rows, and the saturation (rps, p99, server CPU busy) or None."""
    server = make_server(name, s, cpus[0])
    rows = []
    try:
        server.start()
        if saturation is None:
            r = measured(server, s, 0, s.saturation_s, cpus, tmp)
            if r.get("failure") or not r.get("achieved_rps"):
                raise RuntimeError(f"saturation run failed: {r.get('failure')}")
            saturation = {"rps": r["achieved_rps"], "latency_us_p99": r["latency_us_p99"],
                          "server_cpu_busy": r.get("server_cpu_busy")}
            bench.log(f"{name:8} saturation {saturation['rps']:.0f} req/s")
        for pct, rate in s.steps:
            rate = offered(pct, rate, saturation)
            rows.append(step_row(name, s, round_no, pct, rate,
                                 measured(server, s, rate, s.seconds, cpus, tmp)))
            bench.log(f"{name:8} {rate:9.0f} req/s offered: {fmt_step(rows[-1])}")
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        # Every step not run is a failed row, so the report and the checker show the gap.
        for pct, rate in s.steps[len(rows):]:
            rows.append(step_row(name, s, round_no, pct, offered(pct, rate, saturation),
                                 {"requests": 0, "failure": " ".join(str(e).split())}))
        bench.log(f"{name}: {e}")
    finally:
        if server.proc:  # not when it could not be started at all
            server.stop()
    return rows, saturation


def offered(pct, rate, saturation):
    """A step's offered req/s: its own, or its percentage of the saturation (None unknown)."""
    if rate or saturation is None:
        return rate
    return saturation["rps"] * pct / 100


def fmt_step(r):
    return (f"achieved {bench.num(r.get('achieved_rps'), 0)} p50 "
            f"{bench.num(r.get('latency_us_p50'), 0)}us p99 "
            f"{bench.num(r.get('latency_us_p99'), 0)}us cpu/req {bench.num(r.get('cpu_us'), 2)}us"
            + (f" FAILED: {r['failure']}" if r["failed"] else ""))


def run_curves(args, rows, meta):
    """Runs the sweeps and appends their rows to rows; meta["curves"] gets the settings, each
    server's saturation and knee, and the count of failed steps. Skipped (with a line on
    stderr) when http-load is not built."""
    s = Settings(args)
    if not s.http_load.exists():
        bench.log(f"{s.http_load} is not built: latency curves skipped")
        return rows
    bench.raise_fd_limit()
    server_cpu, load_cpus, _ = bench.cpu_layout()
    saturation = {}
    tmp = tempfile.mkdtemp(prefix="rs-curves-")
    try:
        for round_no in range(s.rounds):
            shift = round_no % len(s.servers)  # drift over the run hits each server alike
            for name in s.servers[shift:] + s.servers[:shift]:
                got, saturation[name] = sweep(name, s, round_no, saturation.get(name),
                                              (server_cpu, load_cpus), tmp)
                rows += got
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    curve_rows = [r for r in rows if r["workload"] == WORKLOAD]
    meta["curves"] = {**s.as_meta(), "saturation": saturation,
                      "knees": {name: knee(curve_rows, name, saturation.get(name))
                                for name in s.servers},
                      "failed_steps": sum(1 for r in curve_rows if r["failed"])}
    return rows


# ---------------------------------------------------------------------------- the knee

def steps_of(rows, server):
    """The server's steps in rate order, each the medians over its rounds that did not fail:
    (offered, pct, {key: median}, failures, rounds)."""
    out = []
    mine = [r for r in rows if r["workload"] == WORKLOAD and r["server"] == server]
    # A step whose server never started has no rate, only its percentage: it is listed too.
    steps = {(r.get("offered_rps"), r.get("step_pct")) for r in mine}
    for rate, pct in sorted(steps, key=lambda k: (k[0] is None, k[0] or 0, k[1] or 0)):
        at = [r for r in mine if (r.get("offered_rps"), r.get("step_pct")) == (rate, pct)]
        good = [{**r, "client_late_share": late_share(r)} for r in at if not r["failed"]]
        keys = ["achieved_rps", "cpu_us", "server_cpu_busy", "late_sends", "unsent", "lost",
                "backlog_max", "client_late_share", "client_cpu_busy"] + [
            f"latency_us_{p}" for p in PERCENTILES]
        out.append((rate, pct,
                    {k: bench.median(r.get(k) for r in good) for k in keys},
                    [f"round {r['round']}: {r['failure']}" for r in at if r["failed"]],
                    len(at)))
    return out


def low_load_p99(steps):
    """The knee's yardstick: the median p99 of the steps offered at most half the highest
    step's rate (10, 25 and 50% in a full sweep), none of their rounds failed. A median, so
    that neither one hiccup of the machine during a light step (which would pass every step
    after) nor one unusually quiet step (which would fail every step) sets it."""
    top = max(rate for rate, *_ in steps if rate is not None)
    return bench.median(m["latency_us_p99"] for rate, _, m, failures, _ in steps
                        if rate <= top / 2 and not failures)


def late_share(row):
    """The share of a run's measured requests that http-load sent late by its own delay (see
    LATE_SHARE), or None."""
    sent = row.get("client_requests") or row.get("requests")
    late = row.get("client_late_sends")
    return None if late is None or not sent else late / sent


def idle_at_saturation(saturation):
    """Why the whole sweep measured the client (the server's CPU under CLIENT_BUSY busy at
    saturation), or None."""
    busy = (saturation or {}).get("server_cpu_busy")
    if busy is None or busy >= CLIENT_BUSY:
        return None
    return f"client-limited (server CPU {pct_text(busy)} busy at saturation)"


def generator_behind(m):
    """Why a step's medians m show the load generator behind its schedule, or None."""
    share, busy = m.get("client_late_share"), m.get("client_cpu_busy")
    why = []
    if share is not None and share > LATE_SHARE:
        why.append(f"{share:.1%} of requests late by http-load's own delay")
    if busy is not None and busy > CLIENT_CPU_BUSY:
        why.append(f"http-load's CPU {busy:.0%} busy")
    return ", ".join(why) or None


def knee(rows, server, saturation=None):
    """The server's knee: the highest offered rate up to which every step, none of its rounds
    failed, got at least KNEE_ACHIEVED of its offered rate with p99 at most KNEE_P99_FACTOR
    times the low-load p99. Also why the next step missed, and that reference p99. None, with
    client_limited set, where the sweep measured the client: the server idle at saturation, or
    the generator behind at a step up to the one that decides (the steps past it overload the
    server, and the client with it: they do not count)."""
    steps = steps_of(rows, server)
    found = {"offered_rps": None, "pct": None, "latency_us_p99": None, "why": None,
             "client_limited": idle_at_saturation(saturation)}
    if found["client_limited"]:
        return {**found, "why": found["client_limited"]}
    if not steps or steps[0][3] or steps[0][2]["latency_us_p99"] is None:
        return {**found, "why": "the lowest step failed or was not run"}
    reference = low_load_p99(steps)
    found["reference_p99_us"] = reference
    if not reference:
        return {**found, "why": "no low-load step measured a p99 to judge the others by"}
    for rate, pct, m, failures, _ in steps:
        achieved, p99 = m["achieved_rps"], m["latency_us_p99"]
        where = f"{rate_text(rate)} req/s" + (f" ({pct:g}%)" if pct is not None else "")
        behind = generator_behind(m)
        if behind:
            found["client_limited"] = f"client-limited at {where} ({behind})"
            if found["offered_rps"]:  # what the sweep did show: the knee is no lower
                found["client_limited"] += (f"; every step up to {rate_text(found['offered_rps'])}"
                                            " req/s passed")
            return {**found, "offered_rps": None, "pct": None, "latency_us_p99": None,
                    "why": found["client_limited"]}
        if failures:
            found["why"] = f"{where} failed"
        elif achieved < KNEE_ACHIEVED * rate:
            found["why"] = f"{where} achieved {achieved / rate:.0%} of its offered rate"
        elif p99 > KNEE_P99_FACTOR * reference:
            found["why"] = f"{where} had p99 {p99 / reference:.1f}x the low-load p99"
        if found["why"]:
            return found
        found.update(offered_rps=rate, pct=pct, latency_us_p99=p99)
    found["why"] = "every step passed: the knee is at or past the highest step"
    return found


# ---------------------------------------------------------------------------- the report

def curve_lines(rows, meta):
    """The report's "Latency against load" section: how the sweep ran, a table per server
    (medians over rounds), and each server's knee on a line of its own."""
    c = meta.get("curves")
    if not c:
        return []
    out = ["", "## Latency against load", "",
           f"Each server on `/plaintext` under `perf/http-load`'s open loop: {c['connections']} "
           f"connections, depth 1, {c['schedule']} arrivals, {c['seconds']} s per step after "
           f"{c['warmup_s']} s of warm-up, {c['rounds']} round(s). The steps are percentages of "
           f"the server's closed-loop saturation (`--rate 0`, {c['saturation_s']} s): "
           f"{', '.join(c['steps'])}. Latency is timed from when each request was due, so a "
           "server that falls behind shows it. `CPU busy` is the server's CPU time over the "
           "step's wall time. `late sends`: requests sent more than 1 ms after they were due, "
           "waiting for the server to free a connection or through http-load's own delay; "
           "`late (own)`: the share "
           "of requests late by http-load's own delay (due while a connection had room, or "
           "while its loop slept past their time); `client CPU`: how busy http-load's thread "
           f"was. A sweep whose server CPU was under {CLIENT_BUSY:.0%} busy at saturation, or "
           f"with a step up to and including the deciding one over {LATE_SHARE:.0%} late by its "
           "own delay or "
           f"with http-load over {CLIENT_CPU_BUSY:.0%} busy, measured the client, not the "
           "server: it is marked client-limited and names no knee. `unsent`: requests due but "
           "never sent (still in http-load's backlog at the end). The knee "
           f"is the highest offered rate up to which every step got at least "
           f"{KNEE_ACHIEVED:.0%} of its offered rate with p99 at most {KNEE_P99_FACTOR}x the "
           "low-load p99 (the median p99 of the steps at most half the highest step's rate), "
           "and no round failed: past it the server is queueing, and "
           "latency grows faster than the load. A failed step (errors, timeouts, a count "
           "that disagrees, no result) is marked and left out of the figures and the chart."]
    for server in in_order(r["server"] for r in rows if r["workload"] == WORKLOAD):
        sat = c.get("saturation", {}).get(server) or {}
        out += ["", f"### {server}", "",
                f"Saturation: {rate_text(sat.get('rps'))} req/s closed loop, p99 "
                f"{bench.num(sat.get('latency_us_p99'), 0)} µs, server CPU busy "
                f"{pct_text(sat.get('server_cpu_busy'))}.", "",
                "| offered req/s | of saturation | achieved req/s | p50 µs | p90 µs | p99 µs | "
                "p99.9 µs | max µs | CPU µs/req | CPU busy | late sends | late (own) | "
                "client CPU | unsent | checks |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for rate, pct, m, failures, n in steps_of(rows, server):
            cells = [rate_text(rate), f"{pct:g}%" if pct is not None else "-",
                     rate_text(m["achieved_rps"])] + [
                bench.num(m[f"latency_us_{p}"], 0) for p in PERCENTILES] + [
                bench.num(m["cpu_us"], 2), pct_text(m["server_cpu_busy"]),
                bench.num(m["late_sends"], 0), share_text(m["client_late_share"]),
                pct_text(m["client_cpu_busy"]), bench.num(m["unsent"], 0),
                ("FAILED " + "; ".join(failures)).replace("|", "/") if failures
                else f"ok ({n} round{'s' * (n != 1)})"]
            out.append("| " + " | ".join(cells) + " |")
        k = c.get("knees", {}).get(server) or knee(rows, server, sat)
        out += ["", knee_line(server, k)]
    return out


def knee_line(server, k):
    """The report's line naming a server's knee, or saying why there is none."""
    if k.get("client_limited"):
        return f"Knee of {server}: none: {k['client_limited']}."
    at = (f"{rate_text(k['offered_rps'])} req/s offered" +
          (f" ({k['pct']:g}% of saturation)" if k.get("pct") is not None else "") +
          f", p99 {bench.num(k['latency_us_p99'], 0)} µs" if k.get("offered_rps")
          else "none found")
    return f"Knee of {server}: {at}; {k['why']}."


def rate_text(v):
    return "-" if v is None else f"{v:,.0f}"


def pct_text(v):
    return "-" if v is None else f"{v:.0%}"


def share_text(v):
    return "-" if v is None else f"{v:.1%}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, default=bench.ROOT / "build" / "bin",
                        help="the built binaries, http-load among them (release build)")
    parser.add_argument("--out", type=Path, default=bench.ROOT / "perf" / "results",
                        help="where the report, JSON and chart go")
    parser.add_argument("--servers", help=f"comma-separated (default {','.join(SERVERS)}; "
                        f"quick: {','.join(QUICK_SERVERS)})")
    parser.add_argument("--seconds", type=float, help="seconds per step (default 5, quick 1)")
    parser.add_argument("--rates", help="steps: percent of saturation (10,50,90) or req/s "
                        f"(5000/s,...); default {','.join(map(str, STEPS))}")
    parser.add_argument("--schedule", choices=("poisson", "uniform"),
                        help="arrivals (default poisson: independent clients)")
    parser.add_argument("--rounds", "--curve-rounds", dest="curve_rounds", type=int,
                        help="rounds of every sweep (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help=f"steps {','.join(map(str, QUICK_STEPS))} of 1 s on "
                        f"{' and '.join(QUICK_SERVERS)}: checks the plumbing")
    args = parser.parse_args()
    for tool in ("nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"lab_curves: {tool} is missing; run scripts/setup.sh --lab")
    if not (args.bin / "http-load").exists():
        sys.exit(f"lab_curves: {args.bin / 'http-load'} is not built")
    # Where the numbers came from, as the lab's reports record it (the binaries' commit and
    # build times among it).
    meta = {"mode": "curves", "provenance": lab_provenance.collect(args.bin, bench.ROOT)}
    started = time.monotonic()
    rows = run_curves(args, [], meta)
    meta["wall_s"] = round(time.monotonic() - started)
    print(lab_report.write_report(rows, meta, args.out, write_charts))


if __name__ == "__main__":
    main()
