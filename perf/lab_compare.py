"""Two perf lab runs cell by cell: `bench.py --compare OLD.json [NEW.json]`.

Every cell (section, workload and server; for a latency curve's step also its offered rate
and its share of saturation) of the two runs' JSON files, matched by those, with the ratio
new/old of its median requests/s, CPU per request, system calls per request, p99 latency and
memory per connection, over the runs of the cell that did not fail; and the cells only one of
the two has. A curve step's rate is its achieved rate and its p99 http-load's. Reads the
older files in perf/results too: their rows have no rounds and no failed mark, so a row of
theirs with errors or a count mismatch is left out as a failed run would be.
Imported by perf/bench.py; it does no work at import time."""

import json
from pathlib import Path

from lab_report import median, num, table

KEYS = [("req/s", "rps", 0), ("CPU µs/req", "cpu_us", 2), ("syscalls/req", "syscalls_per_req", 3),
        ("p99 µs", "p99_us", 0), ("B/conn idle", "rss_per_conn_bytes", 0)]


def counted(row):
    """Whether a run counts: not failed, or, from before failures were marked, error-free with
    agreeing counts."""
    if "failed" in row:
        return not row["failed"]
    return not row.get("errors") and row.get("count", "ok") in ("ok", "n/a")


# A curve row's figures under the names the table reads (bench's rows name them so already).
CURVE_KEYS = {"rps": "achieved_rps", "p99_us": "latency_us_p99"}


def newest(out_dir, old):
    """The newest lab report JSON in out_dir other than old, or None (lab_curves.py's own
    -curves.json reports are another kind of run: never picked)."""
    found = [p for p in Path(out_dir).glob("*.json") if p.resolve() != Path(old).resolve()
             and not p.stem.endswith("-curves") and "-curves-run" not in p.stem]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def read_rows(path):
    """The rows of a report's JSON file."""
    return json.loads(Path(path).read_text())["rows"]


def cell_key(row):
    """What a row is a run of: (section, workload, server, step). The step is "" but on a
    latency curve, where it is the step's share of saturation (each run finds its own
    saturation, so that is what matches across runs), or its offered rate where the step was
    given in req/s: a server's steps stay apart."""
    step = ""
    if row.get("section") == "curves":
        pct = row.get("step_pct")
        step = (f"{pct:g}% of saturation" if pct is not None
                else f"{num(row.get('offered_rps'), 0)} req/s")
    return row.get("section", "main"), row["workload"], row["server"], step


def figure(row, key):
    """A row's figure under the table's name (a curve row names two of them otherwise)."""
    if row.get("section") == "curves" and key in CURVE_KEYS:
        return row.get(CURVE_KEYS[key])
    return row.get(key)


def medians(rows):
    """{cell_key: {key: median over the runs that count}}, in the order the cells first ran."""
    runs = {}
    for r in rows:
        runs.setdefault(cell_key(r), []).append(r)
    return {k: {key: median(figure(r, key) for r in mine if counted(r)) for _, key, _ in KEYS}
            for k, mine in runs.items()}


def cell_name(k):
    """A cell as the comparison names it: section (where not main), workload, step."""
    sec, w, _, step = k
    return " ".join(x for x in ((f"[{sec}]" if sec != "main" else ""), w, step) if x)


def ratio_text(old, new, digits):
    """new/old with both values, or "-" where either is missing."""
    if old is None or new is None:
        return "-"
    if not old:
        return f"- ({num(old, digits)}→{num(new, digits)})"
    return f"{new / old:.2f} ({num(old, digits)}→{num(new, digits)})"


def compare(old_rows, new_rows, old_name, new_name):
    """The comparison as Markdown lines: a table of new/old ratios (with the two medians), and
    the cells present in only one run."""
    old, new = medians(old_rows), medians(new_rows)
    both = [k for k in new if k in old]
    lines = [[cell_name(k), k[2]] +
             [ratio_text(old[k][key], new[k][key], d) for _, key, d in KEYS] for k in both]
    out = [f"## Against {old_name}", "",
           f"new/old of each cell's median, new = {new_name}, old = {old_name} (the two medians "
           "in brackets); `-` where either has none.", ""]
    out += table(["workload", "server"] + [label for label, _, _ in KEYS], lines) if lines else [
        "No cell in common."]
    for name, mine, other in ((old_name, old, new), (new_name, new, old)):
        alone = [f"{cell_name(k)} / {k[2]}" for k in mine if k not in other]
        if alone:
            out += ["", f"Only in {name}: " + "; ".join(alone)]
    return out
