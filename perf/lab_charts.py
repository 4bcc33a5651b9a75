"""The perf lab's charts: one chart per question, gnuplot PNGs beside the report.

Each chart answers one thing a reader asks of a run (what a request costs in CPU, in system
calls, in memory per idle connection, how far a backend is from its model's floor, where
latency turns up as load grows) instead of one bar chart per column of the table. A cell that
ran in several rounds is drawn as its median with a min-max bar over the rounds, so a reader
sees at once whether two servers differ by more than the run-to-run noise. Failed rows (the
"failed" key) are never drawn: their numbers measure a broken run, not the server.

bench.py's report calls write_charts(rows, base, meta) with its main, memory and curve rows,
perf/lab_curves.py with its curve rows (workload "curve ..."); each chart reads only its own
section's rows (the CPU, system call and floor charts the main ones, the memory chart the
memory ones, the latency chart the curves). Imported, not run.
"""

import math
import shutil
import subprocess
from pathlib import Path

from lab_report import FLOOR_BOUND, median, ratio, section
from lab_servers import log

# Servers in a fixed order (and colour), so that a chart reads the same from run to run
# whatever order the rounds ran them in; others follow in the order they first appear.
SERVER_ORDER = ("uring", "epoll", "threads", "nginx", "uring floor", "epoll floor")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#7f7f7f", "#9467bd", "#ff7f0e", "#8c564b",
           "#17becf")
CURVE_PREFIX = "curve "
MEMORY_KEY = "rss_per_conn_bytes"
WIDTH_PX = 1100


# ---------------------------------------------------------------------------- rows to figures

def in_order(names):
    """names (with repeats) in chart order: SERVER_ORDER first, then as first seen."""
    seen = list(dict.fromkeys(names))
    return sorted(seen, key=lambda s: (SERVER_ORDER.index(s) if s in SERVER_ORDER
                                       else len(SERVER_ORDER) + seen.index(s)))


def colour(server, servers):
    """A server's colour: fixed for the known ones, so uring is the same blue on every chart."""
    if server in SERVER_ORDER:
        return PALETTE[SERVER_ORDER.index(server)]
    return PALETTE[(len(SERVER_ORDER) + servers.index(server)) % len(PALETTE)]


def bar_figure(values):
    """(median, min, max, how many) of the numbers among values, or None when there are none:
    the point a chart draws and the bar that shows the rounds' spread."""
    values = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    if not values:
        return None
    return median(values), min(values), max(values), len(values)


def cell_figures(rows, key, label=lambda r: r["workload"]):
    """{(group label, server): bar_figure() of key over the rows (rounds) of that cell}, for the
    rows that have key; groups in the order first seen."""
    out = {}
    for r in rows:
        if r.get(key) is not None:
            out.setdefault((label(r), r["server"]), []).append(r[key])
    return {k: s for k, s in ((k, bar_figure(v)) for k, v in out.items()) if s}


# ---------------------------------------------------------------------------- drawing

def quoted(text):
    """text as a gnuplot double-quoted string (where \\n is a line break)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def plot(png, script, datas, height_px):
    """Runs gnuplot on script, whose DATA0, DATA1, ... name the data strings datas, written to
    files beside png (removed after). png, or None when gnuplot failed (said on stderr)."""
    files = [png.with_suffix(f".{n}.dat") for n in range(len(datas))]
    for f, data in zip(files, datas):
        f.write_text(data)
    for n in reversed(range(len(files))):  # DATA10 before DATA1
        script = script.replace(f"DATA{n}", quoted(files[n]))
    head = (f"set terminal pngcairo noenhanced font 'DejaVu Sans,10' size {WIDTH_PX},"
            f"{height_px}\nset output {quoted(png)}\nset encoding utf8\n")
    try:
        result = subprocess.run(["gnuplot"], input=head + script, text=True,
                                capture_output=True, timeout=60)
    finally:
        for f in files:
            f.unlink(missing_ok=True)
    if result.returncode == 0 and png.exists():
        return png
    log(f"gnuplot ({png.name}): {result.stderr.strip()}")
    return None


def decade_axis(axis, values):
    """A log axis over the whole decades that values span, its tics labelled 100, 1,000,
    10,000 ... rather than gnuplot's 1e+06."""
    values = [v for v in values if v > 0]
    if not values:
        return ""
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    labels = ", ".join(f'"{10.0 ** e:,.{max(0, -e)}f}" {10.0 ** e:g}' for e in range(low, high + 1))
    # A hair past the end decades: a tic exactly on the border may round off the axis.
    return (f"set {axis}range [{0.999 * 10.0 ** low:g}:{1.001 * 10.0 ** high:g}]\n"
            f"set format {axis} ''\n"
            f"set {axis}tics add ({labels})")


def axis_range(lows, highs, log_scale, floor_at_zero=True):
    """The value axis: from a power of ten below the least value up to one above the most on a
    log scale (bars need a left edge), else from zero (or a bit below the least) to a bit past
    the most."""
    lo, hi = min(lows), max(highs)
    if log_scale:
        return 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi) + 0.05)
    start = 0 if floor_at_zero else lo - 0.1 * (hi - lo or hi)
    return start, hi + 0.1 * (hi - start or 1)


def wants_log(figures):
    """Log when the values span more than a decade: below that a linear axis from zero shows
    the differences better, above it the small values vanish."""
    lows = [f[1] for f in figures if f[1] > 0]
    return bool(lows) and max(f[2] for f in figures) / min(lows) > 10


def bar_rows(figures, groups, servers, log_scale):
    """The data blocks of a bar chart, one per server (gnuplot's index): y position, median,
    min, max. Each group has 0.8 of a unit of height, shared by its servers."""
    slot = 0.8 / len(servers)
    blocks = []
    for j, server in enumerate(servers):
        lines = []
        for i, group in enumerate(groups):
            f = figures.get((group, server))
            if f is not None and (f[1] > 0 or not log_scale):
                y = i - 0.4 + slot * (j + 0.5)
                lines.append(f"{y:.4f} {f[0]:.6g} {f[1]:.6g} {f[2]:.6g}")
        blocks.append("\n".join(lines or ["NaN NaN NaN NaN"]))
    return "\n\n\n".join(blocks) + "\n", slot * 0.42


def key_strip(entries, top):
    """The key as a plot of its own across the bottom of a multiplot, from screen 0 to top:
    a panel's own key would be laid out in that panel's width."""
    return ["set lmargin at screen 0.02\nset rmargin at screen 0.98",
            f"set bmargin at screen 0\nset tmargin at screen {top:.4f}",
            "unset title\nunset xlabel\nunset ylabel\nunset tics\nunset border\nunset grid",
            "unset arrow\nunset label\nunset logscale\nset xrange [0:1]\nset yrange [0:1]",
            "set key center center horizontal maxrows 1 samplen 2",
            "plot " + ", \\\n  ".join(["NaN notitle"] + entries)]


def bar_chart(png, title, unit, panels, *, log_scale=None, points=False, refs=(), marks=None):
    """A horizontal bar chart: one row of bars per group (workload), one bar per server, the
    group labels at the left, where long names stay readable; the key below.

    panels: [(heading, {(group, server): (median, min, max, n)})], drawn side by side on one
    value axis (the CPU chart's total, user and system), so that every bar is read against the
    same scale; groups and servers are those of the first panel. points: a dot at the median
    instead of a bar (for ratios, whose axis does not start at zero). refs: (value, label)
    vertical reference lines. marks: (name, {group: value}), a short vertical line across one
    group's row (the floor chart's bound by depth). Error bars (min to max over rounds) where
    any cell has more than one round."""
    first = panels[0][1]
    if not first:
        return None
    groups = list(dict.fromkeys(g for g, _ in first))
    servers = in_order(s for _, s in first)
    values = [v for _, figures in panels for v in figures.values()]
    log_scale = wants_log(values) if log_scale is None else log_scale
    if log_scale:
        values = [v for v in values if v[1] > 0]
    extra = [r[0] for r in refs] + list(marks[1].values() if marks else [])
    lo, hi = axis_range([v[1] for v in values] + extra, [v[2] for v in values] + extra,
                        log_scale, floor_at_zero=not points)
    rounds = max(v[3] for v in values)
    # The layout in pixels: title on top, axis label and key below, group labels at the left.
    plot_px = max(len(groups) * max(22, 13 * len(servers) + 8), 160)
    top_px = 78 + 15 * any(h for h, _ in panels)
    bottom_px = 100
    height = top_px + plot_px + bottom_px
    label_px = 30 + 8 * max(len(g) for g in groups)
    gap_px = 40
    panel_px = (WIDTH_PX - label_px - 30 - gap_px * (len(panels) - 1)) / len(panels)
    key = [f"keyentry with boxes fs solid 0.85 noborder lc rgb '{colour(s, servers)}' "
           f"title {quoted(s)}" for s in servers]
    if marks:
        key.append(f"keyentry with vectors nohead lw 2 lc rgb 'black' dt 3 "
                   f"title {quoted(marks[0])}")
    title += (f"\nmedian of {rounds} rounds; black bars: min to max over the rounds"
              if rounds > 1 else "\none run per cell: no spread to show")
    script = [f"set multiplot title {quoted(title)} font ',12'",
              f"set yrange [{len(groups) - 0.5}:-0.5]\nset xrange [{lo}:{hi}]",
              "set logscale x\nset format x '%g'" if log_scale else "",
              "set grid xtics mxtics lc rgb '#dddddd'\nset datafile missing 'NaN'",
              f"set tmargin at screen {1 - top_px / height:.4f}",
              f"set bmargin at screen {bottom_px / height:.4f}",
              "unset key"]
    for v, label in refs:
        script.append(f"set arrow from {v},graph 0 to {v},graph 1 nohead dt 2 lw 1.5 "
                      f"lc rgb '#444444'\nset label {quoted(label)} at {v},graph 1 center "
                      "offset 0,0.6 tc rgb '#444444'")
    datas = []
    for n, (heading, figures) in enumerate(panels):
        data, half = bar_rows(figures, groups, servers, log_scale)
        plots = []
        for j, server in enumerate(servers):
            where, c = f"DATA{n} index {j}", colour(server, servers)
            plots.append(f"{where} using 2:1 with points pt 7 ps 1.4 lc rgb '{c}' notitle"
                         if points else
                         f"{where} using 2:1:({lo}):2:($1-{half}):($1+{half}) with boxxyerror "
                         f"fs solid 0.85 noborder lc rgb '{c}' notitle")
            if rounds > 1:
                plots.append(f"{where} using 2:1:3:4 with xerrorbars pt -1 lw 1.2 "
                             "lc rgb 'black' notitle")
        if marks:
            data += "\n\n" + "\n".join(f"{marks[1][g]} {i - 0.45} 0 0.9"
                                       for i, g in enumerate(groups) if g in marks[1])
            plots.append(f"DATA{n} index {len(servers)} using 1:2:3:4 with vectors nohead "
                         "lw 2 lc rgb 'black' dt 3 notitle")
        datas.append(data)
        left = (label_px + n * (panel_px + gap_px)) / WIDTH_PX
        script += [f"set lmargin at screen {left:.4f}",
                   f"set rmargin at screen {left + panel_px / WIDTH_PX:.4f}",
                   f"set title {quoted(heading)}" if heading else "unset title",
                   "set ytics (" + ", ".join(f"{quoted(g)} {i}" for i, g in enumerate(groups)) +
                   ") scale 0" if n == 0 else "unset ytics",
                   f"set xlabel {quoted(unit + (', log scale' if log_scale else ''))}"
                   if n == len(panels) // 2 else "unset xlabel",
                   "plot " + ", \\\n  ".join(plots)]
    script += key_strip(key, 40 / height)
    script.append("unset multiplot")
    return plot(png, "\n".join(script) + "\n", datas, height)


# ---------------------------------------------------------------------------- the questions

def is_floor(server):
    return server.endswith(" floor")


def cpu_chart(rows, base):
    """What a request costs the server in CPU, user and system time, by workload and server
    (main-section rows only: a memory row's CPU is its connections', not its requests')."""
    served = [r for r in section(rows, "main") if not is_floor(r["server"])]
    return bar_chart(base.parent / f"{base.name}-cpu.png",
                     "What does a request cost the server in CPU time?",
                     "server CPU time per request (µs)",
                     [(heading, cell_figures(served, key)) for heading, key in (
                         ("user + system", "cpu_us"), ("user", "cpu_user_us"),
                         ("system", "cpu_sys_us"))])


def syscall_chart(rows, base):
    """System calls per request: what batching (io_uring) and pipelining save (main-section
    rows only)."""
    served = [r for r in section(rows, "main") if not is_floor(r["server"])]
    return bar_chart(base.parent / f"{base.name}-syscalls.png",
                     "How many system calls does the server make per request?",
                     "system calls per request",
                     [(None, cell_figures(served, "syscalls_per_req"))], log_scale=True)


def memory_chart(rows, base):
    """Bytes per idle connection, from the rows that measured it (none: no chart)."""
    def label(r):
        conns = r.get("connections")
        name = r["workload"]
        return name if conns is None or f"c={conns}" in name else f"{name}, {conns:,} connections"

    measured = [{**r, "kib": r[MEMORY_KEY] / 1024}
                for r in sorted((r for r in section(rows, "memory")
                                 if r.get(MEMORY_KEY) is not None),
                                key=lambda r: r.get("connections") or 0)]
    return bar_chart(base.parent / f"{base.name}-memory.png",
                     "What does an idle connection cost in memory?",
                     "resident memory per idle connection (KiB)",
                     [(None, cell_figures(measured, "kib", label))], log_scale=True)


def floor_rounds(rows):
    """The rows of each round: {round: rows} (rows without a round are round 0, as
    lab_report.round_ratio() takes them)."""
    out = {}
    for r in rows:
        out.setdefault(r.get("round", 0), []).append(r)
    return out


def floor_figures(rows):
    """{(workload, backend): bar_figure() of CPU/request over backend's floor's} over rounds, with
    bench.py's ratio() taken within each round and the median as bench's round_ratio() takes
    it, so the chart and the report's Floors section agree."""
    rounds = floor_rounds(rows)
    out = {}
    for w in dict.fromkeys(r["workload"] for r in rows if is_floor(r["server"])):
        for model in ("uring", "epoll"):
            ratios = [ratio(in_round, w, model, f"{model} floor", "cpu_us")
                      for in_round in rounds.values()]
            s = bar_figure([v for v in ratios if v is not None])
            if s:
                out[(w, model)] = (median(ratios),) + s[1:]
    return out


def floor_chart(rows, base):
    """How far each event-loop backend is from the least work its model can do."""
    figures = floor_figures(rows)
    depth = {}
    for r in rows:
        depth.setdefault(r["workload"], r.get("depth", 1))
    bounds = {w: FLOOR_BOUND[depth[w]] for w, _ in figures if depth[w] in FLOOR_BOUND}
    return bar_chart(base.parent / f"{base.name}-floors.png",
                     "How far is each backend from its I/O model's floor?",
                     "CPU per request ÷ the same model's floor's (1 = the floor)",
                     [(None, figures)], log_scale=False, points=True, refs=[(1, "floor")],
                     marks=("bound (issue 11)", bounds))


def curve_points(rows):
    """One curve's points: [(offered req/s, p50 spread, p99 spread)] over the rounds of each
    offered rate, in rate order."""
    out = []
    for rate in sorted({r["offered_rps"] for r in rows}):
        at = [r for r in rows if r["offered_rps"] == rate]
        p50 = bar_figure(r.get("latency_us_p50") for r in at)
        p99 = bar_figure(r.get("latency_us_p99") for r in at)
        if p50 and p99:
            out.append((rate, p50, p99))
    return out


def latency_chart(rows, base, meta):
    """p50 (solid) and p99 (dashed) against offered load, one colour per server, with each
    server's knee circled (meta's curves.knees, from perf/lab_curves.py)."""
    if not rows:
        return None
    curves = (meta or {}).get("curves", {})
    servers = in_order(r["server"] for r in rows)
    points = {s: curve_points([r for r in rows if r["server"] == s]) for s in servers}
    rounds = max((p[1][3] for pts in points.values() for p in pts), default=1)
    datas, plots = [], []
    for j, server in enumerate(servers):
        datas.append("\n".join(f"{rate:.6g} " + " ".join(f"{v:.6g}" for v in p50[:3] + p99[:3])
                               for rate, p50, p99 in points[server]) or "NaN NaN")
        c = colour(server, servers)
        for cols, dash, name in (("1:2:3:4", 1, "p50"), ("1:5:6:7", 2, "p99")):
            how = f"{cols} with yerrorlines" if rounds > 1 else f"{cols[:3]} with linespoints"
            plots.append(f"DATA{j} using {how} lw 2 dt {dash} pt 7 ps 0.8 lc rgb '{c}' "
                         f"title {quoted(f'{server} {name}')}")
    latencies = [v for pts in points.values() for _, p50, p99 in pts for v in p50[1:3] + p99[1:3]]
    # A client-limited sweep measured the load generator: no knee of its is drawn.
    limited = [s for s, k in curves.get("knees", {}).items()
               if s in servers and k.get("client_limited")]
    knees = [(s, k) for s, k in curves.get("knees", {}).items()
             if s in servers and s not in limited and k.get("offered_rps")
             and k.get("latency_us_p99")]
    if knees:
        datas.append("\n".join(f"{k['offered_rps']} {k['latency_us_p99']}" for _, k in knees))
        plots.append(f"DATA{len(servers)} using 1:2 with points pt 6 ps 3 lw 2 lc rgb 'black' "
                     "title 'knee (at its p99)'")
    failed = curves.get("failed_steps", 0)
    subtitle = [f"open loop, {rows[0].get('connections', '?')} connections, depth 1; "
                "solid: p50, dashed: p99"]
    if rounds > 1:
        subtitle.append(f"median of {rounds} rounds; bars: min to max over the rounds")
    if limited:
        subtitle.append(f"client-limited, no knee: {', '.join(limited)} (the load generator, "
                        "not the server, was the limit: see the report)")
    if failed:
        subtitle.append(f"{failed} failed step{'s' * (failed != 1)} left out: see the report")
    title = "\n".join(["Where does latency turn up as offered load grows?"] + subtitle)
    script = (f"set title {quoted(title)} font ',12'\n"
              "set xlabel 'offered load (requests/s)'\nset ylabel 'latency (µs, log scale)'\n"
              f"set logscale y\n{decade_axis('y', latencies)}\nset xrange [0:*]\n"
              "set grid xtics ytics mytics lc rgb '#dddddd'\n"
              "set key outside below center horizontal samplen 3 spacing 1.2\nset bmargin 7\n"
              "set datafile missing 'NaN'\nplot " + ", \\\n  ".join(plots) + "\n")
    return plot(base.parent / f"{base.name}-latency.png", script, datas, 680)


def write_charts(rows, base, meta=None):
    """The run's charts as PNG files named after base (base-cpu.png, ...), one per question
    the rows can answer; [] without gnuplot. meta: the run's settings (curves: knees, failed
    step count) where it has them."""
    if not shutil.which("gnuplot"):
        log("gnuplot is missing: no charts")
        return []
    good = [r for r in rows if not r.get("failed")]
    curves = [r for r in good if r["workload"].startswith(CURVE_PREFIX)]
    # Each chart its own section's rows: a memory row has CPU and system call figures too
    # (its connections'), which are no request's cost.
    main = [r for r in section(good, "main") if not r["workload"].startswith(CURVE_PREFIX)]
    charts = [cpu_chart(main, base), syscall_chart(main, base),
              memory_chart(section(good, "memory"), base), floor_chart(main, base),
              latency_chart(curves, base, meta)]
    return [Path(c) for c in charts if c]
