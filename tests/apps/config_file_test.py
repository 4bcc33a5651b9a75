#!/usr/bin/env python3
"""--config FILE: the flags in a file are honoured (the command line wins over them), the
example config (packaging/ringserve-http.conf) starts the server, and a bad line, an unknown
key, a section or a key given twice is refused, naming the file and the line, before anything
listens.

Usage: config_file_test.py BIN_DIR SOURCE_DIR
Prints one line per check; exits 0 only when every check passed.
"""
import os
import signal
import subprocess
import sys
import tempfile
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "perf"))
from server_probe import ServerDidNotStart, check, start_server, summary  # noqa: E402

TIMEOUT_S = 30


def stop(server):
    server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        return "killed"


def refused(binary, path, contents, want, what):
    """The server given this file exits non-zero at once, saying `want` on standard error."""
    with open(path, "w") as f:
        f.write(contents)
    r = subprocess.run([binary, "--config", path, "--port", "0"], capture_output=True, text=True,
                       timeout=TIMEOUT_S)
    check(what, r.returncode != 0 and want in r.stderr and r.stdout == "",
          f"exit {r.returncode}, stderr {r.stderr.strip()!r}")


def main():
    bin_dir, source = sys.argv[1], sys.argv[2]
    binary = os.path.join(bin_dir, "ringserve-http")
    with tempfile.TemporaryDirectory(prefix="rs-config-") as directory:
        root = os.path.join(directory, "www")
        os.mkdir(root)
        with open(os.path.join(root, "hello.txt"), "w") as f:
            f.write("hello from the root\n")
        log = os.path.join(directory, "access.log")
        conf = os.path.join(directory, "server.conf")
        with open(conf, "w") as f:
            f.write(f'# a comment\n\nthreads = 2\nbackend = "epoll"\nroot = "{root}"  # served\n'
                    f"access-log = '{log}'\nmax-connections = 500\n"
                    'metrics-listen = ["127.0.0.1:0"]\npin = false\n')
        try:
            server, port, line = start_server(binary, ["--config", conf, "--max-connections",
                                                       "300"])
        except ServerDidNotStart as e:
            check("the server starts with --config", False, str(e))
            return 1
        try:
            check("threads, backend and metrics-listen come from the file",
                  "backend=epoll threads=2 " in line and " metrics" in line, line)
            check("the command line wins over the file", "max-connections=300 " in line, line)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt",
                                        timeout=TIMEOUT_S) as r:
                body = r.read()
            check("root from the file is served", body == b"hello from the root\n", repr(body))
        finally:
            check("the server exits 0 on SIGTERM", stop(server) == 0)
        check("access-log from the file is written",
              os.path.exists(log) and "GET /hello.txt" in open(log).read())

        example = os.path.join(source, "packaging", "ringserve-http.conf")
        try:
            server, port, line = start_server(binary, ["--config", example])
            check("the example config starts the server", True, line)
            check("the server exits 0 on SIGTERM", stop(server) == 0)
        except ServerDidNotStart as e:
            check("the example config starts the server", False, str(e))

        bad = os.path.join(directory, "bad.conf")
        refused(binary, bad, "threads = 2\n# fine so far\nthreadz = 4\n",
                f'{bad}:3: unknown key "threadz"', "an unknown key is refused with its line")
        refused(binary, bad, "threads = 2\nmax-connections 400\n",
                f'{bad}:2: unknown key "max-connections 400"',
                "a line without = is refused with its line")
        refused(binary, bad, "\n\nthreads = 0\n", f"{bad}:3: --threads",
                "a value out of range is refused with its line")
        refused(binary, bad, "threads = many\n", f"{bad}:1: ",
                "a value that is not a number is refused with its line")
        refused(binary, bad, 'backend = "epoll"\nlisten = ["127.0.0.1:0", "127.0.0.1:x"]\n',
                f"{bad}:2: --listen 127.0.0.1:x", "a bad --listen is refused with its line")
        refused(binary, bad, "threads = 2\ngrace-ms = 10\nthreads = 3\n",
                f"{bad}:3: threads is given twice (also on line 1)",
                "a key given twice is refused with both lines")
        refused(binary, bad, "[server]\nthreads = 2\n", f"{bad}:2: [server]",
                "a section is refused")
        refused(binary, bad, "x\n", f'{bad}:1: "x" is not KEY = VALUE',
                "a line CLI11 would skip is refused")
        refused(binary, bad, "version = true\n", f"{bad}:1: version is not taken from a config",
                "--version is not taken from a file")
        r = subprocess.run([binary, "--config", os.path.join(directory, "missing.conf")],
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        check("a missing config file is refused, naming it",
              r.returncode != 0 and "missing.conf" in r.stderr, r.stderr.strip())
    return summary()


if __name__ == "__main__":
    sys.exit(main())
