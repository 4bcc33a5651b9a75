#!/usr/bin/env python3
"""docs/flags.md stays in step with --help: every flag each binary takes is documented, every
documented flag exists, each is documented for the binaries that take it (sections whose heading
ends with "(ringserve-http)" belong to it alone), and a default --help shows is the default the
table gives (the first value in backticks; "echo: `V`" for ringserve-echo's where it differs).

Usage: flags_doc_test.py BIN_DIR DOCS_FLAGS_MD"""
import re
import subprocess
import sys

BINARIES = ("ringserve-http", "ringserve-echo")
HTTP_ONLY = "(ringserve-http)"
# --help spells a BOOLEAN's default as 1 or 0.
SPELLINGS = {"1": "true", "0": "false"}


def help_flags(binary):
    """{flag: default or None} from a binary's --help."""
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    flags = {}
    for line in out.splitlines():
        match = re.match(r"^  (?:-\w,)?(--[a-z0-9-]+)(.*)$", line)
        if not match:
            continue
        # "--port UINT=8080 Excludes: ...", or a flag with no type whose description follows
        # after two spaces or more.
        rest = match.group(2)
        spec = "" if rest.startswith("  ") else re.split(r"  +| Excludes: | Needs: ", rest.strip())[0]
        default = spec.rsplit("=", 1)[1] if "=" in spec else None
        if spec.startswith("BOOLEAN"):
            default = SPELLINGS.get(default, default)
        flags[match.group(1)] = default
    return flags


def documented(path):
    """[(flag, http_only, default cell)] from the tables of docs/flags.md."""
    rows = []
    http_only = False
    with open(path) as f:
        for line in f:
            if line.startswith("## "):
                http_only = line.rstrip().endswith(HTTP_ONLY)
            match = re.match(r"^\| `(--[a-z0-9-]+)` \|\s*([^|]*?)\s*\|", line)
            if match:
                rows.append((match.group(1), http_only, match.group(2).strip()))
    return rows


def main():
    bin_dir, doc = sys.argv[1], sys.argv[2]
    helps = {name: help_flags(f"{bin_dir}/{name}") for name in BINARIES}
    rows = documented(doc)
    failures = []
    seen = set()
    for flag, http_only, cell in rows:
        if flag in seen:
            failures.append(f"{flag} is documented twice")
        seen.add(flag)
        for name in BINARIES:
            if name == "ringserve-echo" and http_only:
                if flag in helps[name]:
                    failures.append(f"{flag}: ringserve-echo takes it too, but it is documented "
                                    f"under a {HTTP_ONLY} heading")
                continue
            if flag not in helps[name]:
                failures.append(f"{flag} is documented but {name} --help does not have it")
                continue
            echo = re.search(r"echo: `([^`]*)`", cell)
            first = re.search(r"`([^`]*)`", cell)
            want = echo.group(1) if name == "ringserve-echo" and echo else (
                first.group(1) if first else None)
            got = helps[name][flag]
            if got != want:
                failures.append(f"{flag}: {name} --help says the default is {got!r}, "
                                f"docs/flags.md says {want!r}")
    for name in BINARIES:
        for flag in helps[name]:
            if flag not in seen:
                failures.append(f"{name} {flag} is not in docs/flags.md")
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"{len(rows)} flags documented; " +
          ("all in step with --help" if not failures else f"{len(failures)} problems"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
