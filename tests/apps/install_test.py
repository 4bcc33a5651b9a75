#!/usr/bin/env python3
"""`cmake --install BUILD --prefix TMP`: the two servers, the docs, the example config and the
systemd units land where a package puts them, and the installed unit names the installed binary.

Usage: install_test.py BUILD_DIR SOURCE_DIR
Prints one line per check; exits 0 only when every check passed.
"""
import glob
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "perf"))
from server_probe import check, summary  # noqa: E402


def main():
    build, source = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="rs-install-") as prefix:
        r = subprocess.run(["cmake", "--install", build, "--prefix", prefix],
                           capture_output=True, text=True, timeout=120)
        check("cmake --install succeeds", r.returncode == 0, r.stderr.strip())
        for binary in ("ringserve-http", "ringserve-echo"):
            path = os.path.join(prefix, "bin", binary)
            check(f"bin/{binary} is installed and executable", os.access(path, os.X_OK))
        docs = os.path.join(prefix, "share", "doc", "ringserve")
        wanted = ["README.md"] + [os.path.basename(p)
                                  for p in glob.glob(os.path.join(source, "docs", "*.md"))]
        check("docs/deploy.md is among the docs", "deploy.md" in wanted)
        for name in wanted:
            check(f"share/doc/ringserve/{name}", os.path.isfile(os.path.join(docs, name)))
        check("share/doc/ringserve/examples/ringserve-http.conf",
              os.path.isfile(os.path.join(docs, "examples", "ringserve-http.conf")))
        units = os.path.join(prefix, "lib", "systemd", "system")
        for unit in ("ringserve-http.service", "ringserve-http.socket", "ringserve-https.socket",
                     "ringserve-http-metrics.socket"):
            check(f"lib/systemd/system/{unit}", os.path.isfile(os.path.join(units, unit)))
        # The configured prefix (the build's CMAKE_INSTALL_PREFIX), not the one given here.
        with open(os.path.join(build, "CMakeCache.txt")) as cache:
            configured = next(line.split("=", 1)[1].strip() for line in cache
                              if line.startswith("CMAKE_INSTALL_PREFIX:"))
        service = os.path.join(units, "ringserve-http.service")
        text = open(service).read() if os.path.isfile(service) else ""
        exec_start = next((line for line in text.splitlines() if line.startswith("ExecStart=")), "")
        check("the unit's ExecStart names the installed binary",
              exec_start.startswith(f"ExecStart={configured}/bin/ringserve-http "), exec_start)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
