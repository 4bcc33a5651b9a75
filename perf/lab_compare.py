"""Two perf lab runs cell by cell: `bench.py --compare OLD.json [NEW.json]`.

Every cell (workload and server) of the two runs' JSON files, matched by name, with the ratio
new/old of its median requests/s, CPU per request, system calls per request, p99 latency and
memory per connection, over the runs of the cell that did not fail; and the cells only one of
the two has. Reads the older files in perf/results too: their rows have no rounds and no failed
mark, so a row of theirs with errors or a count mismatch is left out as a failed run would be.
Imported by perf/bench.py; it does no work at import time."""

import json
from pathlib import Path

from lab_report import cells, median, num, table

KEYS = [("req/s", "rps", 0), ("CPU µs/req", "cpu_us", 2), ("syscalls/req", "syscalls_per_req", 3),
        ("p99 µs", "p99_us", 0), ("B/conn idle", "rss_per_conn_bytes", 0)]


def counted(row):
    """Whether a run counts: not failed, or, from before failures were marked, error-free with
    agreeing counts."""
    if "failed" in row:
        return not row["failed"]
    return not row.get("errors") and row.get("count", "ok") in ("ok", "n/a")


def newest(out_dir, old):
    """The newest report JSON in out_dir other than old, or None."""
    found = [p for p in Path(out_dir).glob("*.json") if p.resolve() != Path(old).resolve()]
    return max(found, key=lambda p: p.stat().st_mtime, default=None)


def read_rows(path):
    """The rows of a report's JSON file."""
    return json.loads(Path(path).read_text())["rows"]


def medians(rows):
    """{(workload, server): {key: median over the runs that count}}."""
    out = {}
    for w, s in cells(rows):
        runs = [r for r in rows if r["workload"] == w and r["server"] == s and counted(r)]
        out[(w, s)] = {key: median(r.get(key) for r in runs) for _, key, _ in KEYS}
    return out


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
    lines = [[w, s] + [ratio_text(old[(w, s)][key], new[(w, s)][key], d) for _, key, d in KEYS]
             for w, s in both]
    out = [f"## Against {old_name}", "",
           f"new/old of each cell's median, new = {new_name}, old = {old_name} (the two medians "
           "in brackets); `-` where either has none.", ""]
    out += table(["workload", "server"] + [label for label, _, _ in KEYS], lines) if lines else [
        "No cell in common."]
    for name, mine, other in ((old_name, old, new), (new_name, new, old)):
        alone = [f"{w} / {s}" for w, s in mine if (w, s) not in other]
        if alone:
            out += ["", f"Only in {name}: " + "; ".join(alone)]
    return out
