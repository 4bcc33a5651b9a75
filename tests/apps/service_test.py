#!/usr/bin/env python3
"""ringserve-http as systemd runs it, without systemd: the test plays the service manager.

- Readiness: on a NOTIFY_SOCKET the test owns, READY=1 (with STATUS=) once serving, RELOADING=1
  then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.
- Socket activation: listening sockets the test made, passed as LISTEN_FDS with LISTEN_PID the
  server's pid (a shell's `exec` keeps its pid) and LISTEN_FDNAMES plain, metrics and tls, are
  served (two loops sharing each on uring and epoll); a descriptor that is not a listening
  socket, a name that is not a listener kind, or --listen beside them is refused.
- Privileges (as root only): --user nobody --group nogroup leaves every id 65534 (read from
  /proc/PID/status) and the server still serves; an unknown user is refused by name.

Usage: service_test.py BIN_DIR --backend uring|epoll|threads
Prints one line per check; exits 0 only when every check passed (77: openssl is missing).
"""
import argparse
import fcntl
import http.client
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "perf"))
from server_probe import check, summary  # noqa: E402

TIMEOUT_S = 30


class Server:
    """ringserve-http started as a service manager would: `inherited` listening sockets at
    descriptors 3, 4, ... named `names`, and NOTIFY_SOCKET when `notify_path` is given."""

    def __init__(self, binary, args, inherited=(), names=(), notify_path=None):
        env = dict(os.environ)
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
            env.pop(name, None)
        if notify_path:
            env["NOTIFY_SOCKET"] = notify_path
        command = [binary, *args]
        if inherited:
            env["LISTEN_FDS"] = str(len(inherited))
            env["LISTEN_FDNAMES"] = ":".join(names)
            # The shell's pid is the server's once it execs: LISTEN_PID names the server.
            command = ["sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', *command]
        fds = [s.fileno() for s in inherited]

        def place_fds():  # in the child: the sockets at 3, 4, ..., open across exec
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i)  # dup2's copy is inheritable

        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=self.log, text=True, close_fds=False,
                                        preexec_fn=place_fds if fds else None)
        self.pid = self.process.pid

    def startup_line(self):
        ready, _, _ = select.select([self.process.stdout], [], [], TIMEOUT_S)
        return self.process.stdout.readline().strip() if ready else ""

    def stderr(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return "killed"


def listening_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def get(port, path, context=None):
    if context:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=TIMEOUT_S)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def notifications(sock):
    """The next datagram on the notify socket, as {KEY: value}; {} when none comes in time."""
    ready, _, _ = select.select([sock], [], [], TIMEOUT_S)
    if not ready:
        return {}
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)


def readiness(binary, backend, directory):
    path = os.path.join(directory, "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        server = Server(binary, ["--backend", backend, "--port", "0"], notify_path=path)
        line = server.startup_line()
        first = notifications(sock)
        check(f"{backend}: READY=1 once serving", first.get("READY") == "1", str(first))
        check(f"{backend}: STATUS says where it serves",
              first.get("STATUS", "").startswith("serving on 127.0.0.1 port "), str(first))
        port = int(re.search(r" port (\d+)", line).group(1)) if " port " in line else 0
        check(f"{backend}: serving when READY=1 came", get(port, "/plaintext")[0] == 200)
        server.process.send_signal(signal.SIGHUP)
        reloading, again = notifications(sock), notifications(sock)
        check(f"{backend}: SIGHUP: RELOADING=1 with MONOTONIC_USEC",
              reloading.get("RELOADING") == "1" and reloading.get("MONOTONIC_USEC", "").isdigit(),
              str(reloading))
        check(f"{backend}: SIGHUP: then READY=1", again.get("READY") == "1", str(again))
        server.process.send_signal(signal.SIGTERM)
        stopping = notifications(sock)
        check(f"{backend}: SIGTERM: STOPPING=1", stopping.get("STOPPING") == "1", str(stopping))
        code = server.stop()
        check(f"{backend}: exits 0", code == 0, "" if code == 0 else server.stderr())


def make_certificate(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=TIMEOUT_S)
    return cert, key


def socket_activation(binary, backend, directory):
    cert, key = make_certificate(directory)
    sockets = [listening_socket() for _ in range(3)]
    plain, metrics, tls = (s.getsockname()[1] for s in sockets)
    # Two loops share each socket on the event-loop backends (the threads backend has one).
    threads = ["--threads", "2"] if backend != "threads" else []
    server = Server(binary, ["--backend", backend, *threads, "--tls-cert", cert, "--tls-key", key],
                    inherited=sockets, names=["plain", "metrics", "tls"])
    for s in sockets:
        s.close()  # the server holds them now
    try:
        line = server.startup_line()
        check(f"{backend}: the start-up line lists the inherited sockets",
              f"127.0.0.1 port {plain} (inherited), 127.0.0.1 port {metrics} metrics (inherited), "
              f"127.0.0.1 port {tls} tls (inherited)" in line, line or server.stderr())
        answers = [get(plain, "/plaintext") for _ in range(8)]
        check(f"{backend}: the plain socket serves",
              all(a == (200, b"Hello, World!") for a in answers), str(answers[0]))
        status, body = get(metrics, "/metrics")
        check(f"{backend}: the metrics socket serves /metrics",
              status == 200 and b"ringserve_" in body, f"{status} {body[:60]!r}")
        check(f"{backend}: the metrics socket serves nothing else",
              get(metrics, "/plaintext")[0] == 404)
        context = ssl.create_default_context(cafile=cert)
        answers = [get(tls, "/plaintext", context) for _ in range(4)]
        check(f"{backend}: the tls socket speaks TLS",
              all(a == (200, b"Hello, World!") for a in answers), str(answers[0]))
    finally:
        code = server.stop()
        check(f"{backend}: exits 0 on SIGTERM", code == 0, "" if code == 0 else server.stderr())

    # Refused at start-up, naming the descriptor and its name.
    refusals = [
        ("a name that is not a listener kind", ["tlz"], [], 'descriptor 3 from systemd '
         '(LISTEN_FDS), named "tlz": unknown option "tlz"'),
        ("--listen beside inherited sockets", ["plain"], ["--listen", "127.0.0.1:0"],
         "--listen is given and systemd passed listening sockets"),
        ("--port beside inherited sockets", ["plain"], ["--port", "0"],
         "--port is given and systemd passed listening sockets"),
        ("a tls socket without a certificate", ["tls"], [], "a socket named tls"),
    ]
    for what, names, args, want in refusals:
        s = listening_socket()
        server = Server(binary, ["--backend", backend, *args], inherited=[s], names=names)
        s.close()
        code = server.process.wait(timeout=TIMEOUT_S)
        check(f"{backend}: refused: {what}", code != 0 and want in server.stderr(),
              server.stderr().strip())
    given = [listening_socket(), socket.socket(socket.AF_INET, socket.SOCK_STREAM)]
    server = Server(binary, ["--backend", backend], inherited=given, names=["plain", "plain"])
    for s in given:
        s.close()
    code = server.process.wait(timeout=TIMEOUT_S)
    check(f"{backend}: refused: a socket that is not listening",
          code != 0 and 'descriptor 4 from systemd (LISTEN_FDS), named "plain": not a listening '
          'stream socket' in server.stderr(), server.stderr().strip())


def ids(pid):
    """The Uid:, Gid: and Groups: lines of /proc/PID/status, as lists of numbers."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, values = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                found[key] = [int(v) for v in values.split()]
    return found


def privileges(binary, backend):
    if os.geteuid() != 0:
        print(f"skip {backend}: --user and --group need the tests to run as root")
        return
    server = Server(binary, ["--backend", backend, "--port", "0", "--user", "nobody", "--group",
                             "nogroup"])
    try:
        line = server.startup_line()
        port = int(re.search(r" port (\d+)", line).group(1)) if " port " in line else 0
        check(f"{backend}: --user nobody starts", port != 0, server.stderr())
        found = ids(server.pid)
        check(f"{backend}: every uid and gid is 65534, no other group",
              found.get("Uid") == [65534] * 4 and found.get("Gid") == [65534] * 4
              and set(found.get("Groups", [])) <= {65534}, str(found))
        check(f"{backend}: serves as nobody", port != 0 and get(port, "/plaintext")[0] == 200)
    finally:
        code = server.stop()
        check(f"{backend}: exits 0 on SIGTERM", code == 0, "" if code == 0 else server.stderr())
    for args, want in ((["--user", "no-such-user-rs"], "--user no-such-user-rs: no such user"),
                       (["--user", "nobody", "--group", "no-such-group-rs"],
                        "--group no-such-group-rs: no such group")):
        r = subprocess.run([binary, "--backend", backend, "--port", "0", *args],
                           capture_output=True, text=True, timeout=TIMEOUT_S)
        check(f"{backend}: refused: {' '.join(args)}", r.returncode != 0 and want in r.stderr,
              r.stderr.strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("--backend", required=True)
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        print("SKIP: openssl not installed (scripts/setup.sh installs it)")
        return 77
    binary = os.path.join(args.bin_dir, "ringserve-http")
    with tempfile.TemporaryDirectory(prefix="rs-service-") as directory:
        readiness(binary, args.backend, directory)
        socket_activation(binary, args.backend, directory)
        privileges(binary, args.backend)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
