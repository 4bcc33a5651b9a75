#!/usr/bin/env python3
"""Unit tests of the perf lab's logic on synthetic rows: no server, no load, no gnuplot, so
they run in a second on any build (ctest PerfLab.LogicUnitTests). What they pin down: a failed
run stays out of every median and ratio, ratios are taken within a round, the knee rule
(client-limited sweeps and the zero-p99 guard included), --compare's cell matching, judge()'s
cold and access-log checks, the count check, which rows each chart takes, and the provenance's
stale-binaries warning.

Usage: test_lab_logic.py [unittest's arguments]"""
import json
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "perf"))
import bench  # noqa: E402
import lab_charts  # noqa: E402
import lab_compare  # noqa: E402
import lab_curves  # noqa: E402
import lab_provenance  # noqa: E402
import lab_report  # noqa: E402

W = "plaintext c=64"


def run(server, round_no=0, failed=False, workload=W, section="main", **figures):
    """A main-section row."""
    return {"workload": workload, "server": server, "round": round_no, "section": section,
            "failed": failed, "failure": "broken" if failed else None, **figures}


def step(server, pct, offered, achieved, p99, failed=False, round_no=0, **extra):
    """A curve row as lab_curves.step_row() makes it (the server CPU busy and no late sends
    unless told)."""
    return {"workload": lab_curves.WORKLOAD, "section": "curves", "server": server,
            "round": round_no, "connections": 64, "step_pct": pct, "offered_rps": offered,
            "achieved_rps": achieved, "latency_us_p99": p99, "latency_us_p50": p99 / 4,
            "client_requests": offered, "requests": offered, "late_sends": 0,
            "failed": failed, "failure": "timeouts=3" if failed else None, **extra}


BUSY = {"rps": 10000, "server_cpu_busy": 0.98, "latency_us_p99": 900}


def sweep(server="uring", p99s=(100, 110, 120, 130, 2000), achieved=None, **extra):
    """Five steps of 10000 req/s saturation: 10, 30, 50, 70, 90%."""
    pcts = (10, 30, 50, 70, 90)
    achieved = achieved or [p * 100 for p in pcts]
    return [step(server, p, p * 100, a, q, **extra) for p, a, q in zip(pcts, achieved, p99s)]


class FailedRunsStayOut(unittest.TestCase):
    def test_spread_and_median_leave_failed_runs_out(self):
        runs = [run("uring", 0, cpu_us=10.0), run("uring", 1, cpu_us=12.0),
                run("uring", 2, failed=True, cpu_us=1000.0)]
        self.assertEqual(lab_report.spread(runs, "cpu_us", 1), "11.0 (10.0–12.0)")

    def test_ratio_ignores_a_failed_run(self):
        rows = [run("uring", cpu_us=5.0), run("nginx", cpu_us=10.0),
                run("nginx", failed=True, cpu_us=1.0)]
        self.assertEqual(lab_report.round_ratio(rows, W, "uring", "nginx", "cpu_us"), 0.5)

    def test_a_round_whose_run_failed_gives_no_ratio(self):
        rows = [run("uring", 0, cpu_us=5.0), run("nginx", 0, cpu_us=10.0),
                run("uring", 1, failed=True, cpu_us=50.0), run("nginx", 1, cpu_us=10.0)]
        self.assertEqual(lab_report.round_ratio(rows, W, "uring", "nginx", "cpu_us"), 0.5)

    def test_compare_medians_leave_failed_runs_out(self):
        rows = [run("uring", 0, rps=100.0), run("uring", 1, rps=200.0, failed=True)]
        got = lab_compare.medians(rows)[("main", W, "uring", "")]
        self.assertEqual(got["rps"], 100.0)


class RatiosWithinARound(unittest.TestCase):
    def test_drift_cancels(self):
        # The machine is twice as slow in round 1: within each round uring costs half nginx.
        rows = [run("uring", 0, cpu_us=5.0), run("nginx", 0, cpu_us=10.0),
                run("uring", 1, cpu_us=10.0), run("nginx", 1, cpu_us=20.0),
                run("uring", 2, cpu_us=5.0), run("nginx", 2, cpu_us=10.0)]
        self.assertEqual(lab_report.round_ratio(rows, W, "uring", "nginx", "cpu_us"), 0.5)

    def test_never_across_rounds(self):
        # uring only in round 0 and nginx only in round 1: no round holds both.
        rows = [run("uring", 0, cpu_us=5.0), run("nginx", 1, cpu_us=10.0)]
        self.assertIsNone(lab_report.round_ratio(rows, W, "uring", "nginx", "cpu_us"))

    def test_median_over_rounds(self):
        rows = []
        for n, (u, g) in enumerate(((1.0, 10.0), (3.0, 10.0), (9.0, 10.0))):
            rows += [run("uring", n, cpu_us=u), run("nginx", n, cpu_us=g)]
        self.assertAlmostEqual(lab_report.round_ratio(rows, W, "uring", "nginx", "cpu_us"), 0.3)


class KneeRule(unittest.TestCase):
    def test_knee_before_the_p99_jump(self):
        k = lab_curves.knee(sweep(), "uring", BUSY)
        self.assertIsNone(k["client_limited"])
        self.assertEqual((k["offered_rps"], k["pct"]), (7000, 70))
        self.assertIn("p99", k["why"])

    def test_knee_before_a_step_that_falls_behind(self):
        rows = sweep(p99s=(100,) * 5, achieved=[1000, 3000, 5000, 6500, 9000])
        k = lab_curves.knee(rows, "uring", BUSY)
        self.assertEqual(k["offered_rps"], 5000)  # 7000 achieved 6500
        self.assertIn("achieved 93%", k["why"])

    def test_every_step_passed(self):
        k = lab_curves.knee(sweep(p99s=(100,) * 5), "uring", BUSY)
        self.assertEqual(k["offered_rps"], 9000)
        self.assertIn("every step passed", k["why"])

    def test_a_failed_step_ends_the_knee(self):
        rows = sweep(p99s=(100,) * 5)
        rows[3]["failed"] = True
        rows[3]["failure"] = "timeouts=3"
        k = lab_curves.knee(rows, "uring", BUSY)
        self.assertEqual(k["offered_rps"], 5000)
        self.assertIn("failed", k["why"])

    def test_lowest_step_failed(self):
        rows = sweep()
        rows[0]["failed"] = True
        k = lab_curves.knee(rows, "uring", BUSY)
        self.assertIsNone(k["offered_rps"])
        self.assertIn("lowest step", k["why"])

    def test_zero_low_load_p99_is_no_yardstick(self):
        k = lab_curves.knee(sweep(p99s=(0, 0, 0, 100, 100)), "uring", BUSY)
        self.assertIsNone(k["offered_rps"])
        self.assertIn("no low-load step measured a p99", k["why"])

    def test_client_limited_by_an_idle_server(self):
        idle = {**BUSY, "server_cpu_busy": 0.39}
        k = lab_curves.knee(sweep(), "uring", idle)
        self.assertIsNone(k["offered_rps"])
        self.assertEqual(k["client_limited"], "client-limited (server CPU 39% busy at "
                         "saturation)")
        self.assertEqual(lab_curves.knee_line("uring", k), "Knee of uring: none: "
                         "client-limited (server CPU 39% busy at saturation).")

    def test_client_limited_by_the_generators_own_lateness(self):
        rows = sweep()
        rows[3].update(client_requests=53000, late_sends=31000, client_late_sends=3000)
        k = lab_curves.knee(rows, "uring", BUSY)
        self.assertIsNone(k["offered_rps"])
        self.assertEqual(k["client_limited"], "client-limited at 7,000 req/s (70%) (5.7% of "
                         "requests late by http-load's own delay); every step up to 5,000 "
                         "req/s passed")

    def test_the_deciding_step_with_the_generator_behind_is_client_limited(self):
        # 70% misses the p99 rule, but the generator was behind there: it cannot decide.
        rows = sweep(p99s=(100, 110, 120, 2000, 200000))
        rows[3].update(client_cpu_busy=0.99)
        k = lab_curves.knee(rows, "uring", BUSY)
        self.assertIsNone(k["offered_rps"])
        self.assertIn("client-limited at 7,000 req/s (70%) (http-load's CPU 99% busy)",
                      k["client_limited"])

    def test_a_generator_busy_at_the_limit_is_not_client_limited(self):
        rows = sweep(client_cpu_busy=0.95)  # not over
        self.assertIsNone(lab_curves.knee(rows, "uring", BUSY)["client_limited"])

    def test_client_limited_by_a_busy_generator(self):
        rows = sweep()
        rows[1].update(client_cpu_busy=0.97)
        k = lab_curves.knee(rows, "uring", BUSY)
        self.assertIsNone(k["offered_rps"])
        self.assertIn("at 3,000 req/s (30%) (http-load's CPU 97% busy)", k["client_limited"])

    def test_late_sends_waiting_for_the_server_are_not_the_clients(self):
        # The server saturated at 90%: nearly every request waited for a connection, none
        # through the generator's own delay. The knee stands.
        rows = sweep(p99s=(100, 110, 120, 130, 200000), client_cpu_busy=0.6)
        rows[4].update(client_requests=9000, late_sends=8900, client_late_sends=12)
        k = lab_curves.knee(rows, "uring", BUSY)
        self.assertIsNone(k["client_limited"])
        self.assertEqual(k["offered_rps"], 7000)

    def test_the_generator_behind_past_the_deciding_step_does_not_count(self):
        rows = sweep(p99s=(100, 110, 120, 2000, 200000))
        rows[4].update(client_requests=9000, client_late_sends=900, client_cpu_busy=0.99)
        k = lab_curves.knee(rows, "uring", BUSY)
        self.assertIsNone(k["client_limited"])
        self.assertEqual(k["offered_rps"], 5000)
        self.assertIn("7,000 req/s (70%) had p99", k["why"])

    def test_own_lateness_at_the_limit_is_not_client_limited(self):
        rows = sweep()
        rows[4].update(client_requests=1000, client_late_sends=10)  # 1.0%: not over
        self.assertIsNone(lab_curves.knee(rows, "uring", BUSY)["client_limited"])

    def test_saturation_busy_at_the_limit_is_not_client_limited(self):
        self.assertIsNone(lab_curves.knee(sweep(), "uring",
                                          {"server_cpu_busy": 0.9})["client_limited"])

    def test_client_limited_names_no_knee_in_the_chart(self):
        rows = sweep()
        meta = {"curves": {"knees": {"uring": lab_curves.knee(rows, "uring",
                                                              {"server_cpu_busy": 0.3})},
                           "failed_steps": 0}}
        scripts = []
        real = lab_charts.plot
        lab_charts.plot = lambda png, script, datas, h: scripts.append((script, datas)) or png
        try:
            lab_charts.latency_chart(rows, Path("/nonexistent/x"), meta)
        finally:
            lab_charts.plot = real
        script, datas = scripts[0]
        self.assertNotIn("knee (at its p99)", script)
        self.assertIn("client-limited, no knee: uring", script)
        self.assertEqual(len(datas), 1)  # the curve only, no knee point

    def test_report_says_client_limited(self):
        rows = sweep()
        meta = {"curves": {"connections": 64, "schedule": "poisson", "seconds": 1,
                           "warmup_s": 0.25, "rounds": 1, "saturation_s": 1,
                           "steps": ["10%"], "saturation": {"uring": {
                               "rps": 10000, "latency_us_p99": 900, "server_cpu_busy": 0.39}}}}
        text = "\n".join(lab_curves.curve_lines(rows, meta))
        self.assertIn("\nKnee of uring: none: client-limited (server CPU 39% busy", text)
        self.assertIn("| unsent |", text)
        self.assertIn("| late (own) | client CPU |", text)

    def test_report_gives_the_generators_share_and_busy(self):
        rows = sweep(client_cpu_busy=0.42)
        rows[0].update(client_requests=1000, client_late_sends=5)
        meta = {"curves": {"connections": 64, "schedule": "poisson", "seconds": 1,
                           "warmup_s": 0.25, "rounds": 1, "saturation_s": 1, "steps": ["10%"],
                           "saturation": {"uring": BUSY}}}
        text = "\n".join(lab_curves.curve_lines(rows, meta))
        first = next(line for line in text.splitlines() if line.startswith("| 1,000 |"))
        self.assertIn("| 0.5% | 42% |", first)


class CompareMatching(unittest.TestCase):
    def test_curve_steps_stay_apart_and_match_by_share(self):
        old = sweep(p99s=(100,) * 5)
        new = [dict(r, offered_rps=r["offered_rps"] * 2, achieved_rps=r["achieved_rps"] * 2)
               for r in old]  # a faster saturation: other rates, the same shares
        m = lab_compare.medians(old)
        self.assertEqual(len(m), 5)
        key = ("curves", lab_curves.WORKLOAD, "uring", "50% of saturation")
        self.assertEqual(m[key]["rps"], 5000)  # achieved_rps, mapped
        self.assertEqual(m[key]["p99_us"], 100)  # latency_us_p99, mapped
        text = "\n".join(lab_compare.compare(old, new, "old", "new"))
        self.assertNotIn("Only in", text)
        self.assertIn("2.00 (5000→10000)", text)

    def test_sections_stay_apart(self):
        rows = [run("uring", rps=100.0), run("uring", rps=1.0, section="knobs")]
        self.assertEqual(len(lab_compare.medians(rows)), 2)

    def test_newest_never_picks_a_curves_report(self):
        with tempfile.TemporaryDirectory() as d:
            old, lab, curves = (Path(d) / n for n in (
                "2026-01-01-vm.json", "2026-01-02-vm.json", "2026-01-03-vm-curves.json"))
            for p in (old, lab, curves, Path(d) / "2026-01-04-vm-curves-run2.json"):
                p.write_text(json.dumps({"rows": []}))
            self.assertEqual(lab_compare.newest(d, old), lab)


class Judge(unittest.TestCase):
    def counted(self, **row):
        return {"requests": 1000, "server_requests": 1000, "connections": 16, **row}

    def test_cold_row_that_read_little_from_disk_fails(self):
        row = bench.judge(self.counted(cold_files=1024, file_bytes=65536,
                                       disk_read_bytes=65536 * 1000 * 0.2))
        self.assertTrue(row["failed"])
        self.assertEqual(row["failure"], "not cold: only 20% read from disk")

    def test_cold_row_without_a_disk_count_fails(self):
        row = bench.judge(self.counted(cold_files=1024, file_bytes=65536,
                                       disk_read_bytes=None))
        self.assertTrue(row["failed"])

    def test_cold_row_read_from_disk_passes(self):
        row = bench.judge(self.counted(cold_files=1024, file_bytes=65536,
                                       disk_read_bytes=65536 * 1000 * 0.9))
        self.assertFalse(row["failed"], row["failure"])

    def test_hot_static_row_is_not_judged_cold(self):
        row = bench.judge(self.counted(file_bytes=1024, disk_read_bytes=0))
        self.assertFalse(row["failed"], row["failure"])

    def test_access_log_with_lines_dropped_fails(self):
        row = bench.judge(self.counted(log_lines=999))
        self.assertTrue(row["failed"])
        self.assertIn("access log: 999 lines for 1000 requests", row["failure"])

    def test_access_log_with_every_line_passes(self):
        self.assertFalse(bench.judge(self.counted(log_lines=1001))["failed"])


class CountCheck(unittest.TestCase):
    def test_wrk_may_leave_one_batch_per_connection_in_flight(self):
        r = {"requests": 100, "server_requests": 116, "connections": 16, "depth": 1}
        self.assertEqual(lab_report.count_check(r), "ok")

    def test_http_load_must_agree_exactly(self):
        r = {"client": "http-load", "requests": 100, "server_requests": 101,
             "connections": 16, "depth": 1}
        self.assertEqual(lab_report.count_check(r), "server 101, client 100")
        self.assertEqual(lab_report.count_check({**r, "server_requests": 100}), "ok")


class ChartRows(unittest.TestCase):
    """Which rows each chart takes (bar_chart captured: no gnuplot)."""

    def setUp(self):
        self.panels = {}
        self.real = lab_charts.bar_chart

        def capture(png, title, unit, panels, **kw):
            self.panels[png.name] = (panels, kw)
        lab_charts.bar_chart = capture

    def tearDown(self):
        lab_charts.bar_chart = self.real

    def test_cpu_and_syscall_charts_take_main_rows_only(self):
        rows = [run("uring", cpu_us=10.0, syscalls_per_req=0.5),
                run("uring", workload="memory c=200 idle", section="memory", cpu_us=900.0,
                    syscalls_per_req=40.0, rss_per_conn_bytes=4096.0, connections=200)]
        base = Path("/nonexistent/x")
        lab_charts.cpu_chart(rows, base)
        lab_charts.syscall_chart(rows, base)
        lab_charts.memory_chart(rows, base)
        cpu = self.panels["x-cpu.png"][0][0][1]
        self.assertEqual(list(cpu), [(W, "uring")])
        self.assertEqual(list(self.panels["x-syscalls.png"][0][0][1]), [(W, "uring")])
        self.assertEqual([g for g, _ in self.panels["x-memory.png"][0][0][1]],
                         ["memory c=200 idle"])

    def test_floor_chart_draws_the_bounds(self):
        rows = [run("uring", cpu_us=10.0, depth=1), run("uring floor", cpu_us=9.0, depth=1)]
        lab_charts.floor_chart(rows, Path("/nonexistent/x"))
        _, kw = self.panels["x-floors.png"]
        self.assertEqual(kw["marks"][1], {W: lab_report.FLOOR_BOUND[1]})


class Provenance(unittest.TestCase):
    def test_binaries_older_than_the_commit_are_flagged(self):
        self.assertEqual(lab_provenance.staleness({"a": 100, "b": 200}, {"commit_time": 300}),
                         lab_provenance.STALE)

    def test_binaries_built_after_the_commit_pass(self):
        self.assertIsNone(lab_provenance.staleness({"a": 100, "b": 400}, {"commit_time": 300}))
        self.assertIsNone(lab_provenance.staleness({}, {"commit_time": 300}))
        self.assertIsNone(lab_provenance.staleness({"a": 1}, {}))


if __name__ == "__main__":
    unittest.main()
