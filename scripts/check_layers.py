#!/usr/bin/env python3
"""Checks who may include what (docs/architecture.md, "Rules").

Follows every quoted #include of the project, transitively, from each file of a layer, and fails
when a file reaches something its layer may not: the protocols (net/http, net/echo) and the
transport seam never reach liburing or a backend; core never reaches net/ or liburing.
Usage: scripts/check_layers.py [ROOT]   (exit 1 and a line per violation when a rule is broken)
"""
import re
import sys
from pathlib import Path

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)

# The seam library (rs_transport): what protocol code sees of connections and loops.
SEAM = {
    "net/connection.hpp", "net/connection.cpp", "net/transport.hpp", "net/input.hpp",
    "net/file_service.hpp", "net/file_open.hpp", "net/log_sink.hpp", "net/loop_counters.hpp",
    "net/startup_error.hpp", "net/tls/tls_context.hpp", "net/tls/tls_context.cpp",
    "net/tls/tls_session.hpp", "net/tls/tls_session.cpp",
}
BACKEND_PREFIXES = ("net/uring/", "net/epoll/", "net/threads/", "net/loop/", "net/sync/")
BACKEND_FILES = {"net/server.hpp", "net/socket.hpp"}


def forbidden_for_protocols(name, system):
    if system:
        return name.startswith("liburing")
    return name.startswith(BACKEND_PREFIXES) or name in BACKEND_FILES


def forbidden_for_core(name, system):
    if system:
        return name.startswith("liburing")
    return name.startswith("net/") or name.startswith("apps/")


def includes(root, rel, cache):
    if rel not in cache:
        path = root / rel
        text = path.read_text(errors="replace") if path.is_file() else ""
        cache[rel] = [(m.group(1) == "<", m.group(2)) for m in INCLUDE.finditer(text)]
    return cache[rel]


def first_violation(root, start, forbidden, cache):
    """A chain of includes from start to something forbidden, or None."""
    seen = {start}
    stack = [(start, [start])]
    while stack:
        rel, chain = stack.pop()
        for system, name in includes(root, rel, cache):
            if forbidden(name, system):
                return chain + [f"<{name}>" if system else name]
            if not system and name not in seen and (root / name).is_file():
                seen.add(name)
                stack.append((name, chain + [name]))
    return None


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    cache = {}
    files = []
    for pattern in ("net/http/**/*", "net/echo/**/*", "core/**/*"):
        files += [p for p in root.glob(pattern) if p.suffix in (".hpp", ".cpp")]
    rules = [(str(p.relative_to(root)), forbidden_for_core if str(p.relative_to(root)).startswith("core/")
              else forbidden_for_protocols) for p in files]
    rules += [(rel, forbidden_for_protocols) for rel in sorted(SEAM) if (root / rel).is_file()]
    bad = 0
    for rel, forbidden in sorted(rules):
        chain = first_violation(root, rel, forbidden, cache)
        if chain:
            bad += 1
            print(f"layers: {rel} reaches {chain[-1]}: {' -> '.join(chain)}")
    if bad:
        print(f"layers: {bad} file(s) break the include rules (docs/architecture.md)")
        return 1
    print(f"layers: {len(rules)} files of core, the seam and the protocols reach no backend")
    return 0


if __name__ == "__main__":
    sys.exit(main())
