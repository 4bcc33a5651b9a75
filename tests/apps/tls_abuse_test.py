#!/usr/bin/env python3
"""A TLS port under abuse, on one backend: 10,000 connections that open and never send a
ClientHello (as many as the open-file limit allows, if fewer), and while they are held, a
handshake flood of 100 clients at once, each verifying the certificate and asking for
/plaintext. Every flood client must be served; the silent ones must be cut by the handshake
timeout, counted; and the server's descriptors and connections must come back to where they
were.

Usage: tls_abuse_test.py BIN_DIR --backend uring|epoll [--silent 10000]
Exit 0 when every check passed; 77 when the openssl command is missing.
"""
import argparse
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "perf"))
from server_probe import (fd_count, metrics, raise_nofile, start_server,  # noqa: E402
                          wait_until)

TIMEOUT_S = 30
FLOOD = 100


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--silent", type=int, default=10000)
    args = parser.parse_args()
    if shutil.which("openssl") is None:
        print("SKIP: no openssl command (scripts/setup.sh installs it)")
        return 77
    raise_nofile()
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    silent = min(args.silent, limit - FLOOD - 200)
    print(f"{silent} silent connections (open-file limit {limit})", flush=True)

    with tempfile.TemporaryDirectory(prefix="rs-tls-abuse-") as directory:
        cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=TIMEOUT_S)
        server, port, _ = start_server(
            os.path.join(args.bin_dir, "ringserve-http"),
            ["--backend", args.backend, "--tls-cert", cert, "--tls-key", key,
             "--handshake-timeout-ms", "3000", "--max-connections", str(silent + FLOOD + 50)])
        try:
            return run(server, port, cert, silent)
        finally:
            server.kill()
            server.wait()


def run(server, port, cert, silent):
    context = ssl.create_default_context(cafile=cert)
    probe = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S),
                                server_hostname="localhost")
    base = metrics(probe)
    base_fds = fd_count(server.pid)

    held = []
    for _ in range(silent):
        held.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S))
    wait_until("the silent connections to be taken in", lambda: metrics(probe),
               lambda m: m["ringserve_connections_open"] >= base["ringserve_connections_open"] +
               silent * 9 // 10, TIMEOUT_S, 0.1)

    results = []
    lock = threading.Lock()

    def flood_client():
        try:
            with context.wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                              timeout=TIMEOUT_S),
                                     server_hostname="localhost") as s:
                s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            ok = data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"Hello, World!")
        except (OSError, ssl.SSLError) as e:
            ok = f"{type(e).__name__}: {e}"
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=flood_client) for _ in range(FLOOD)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT_S * 2)
    served = sum(1 for r in results if r is True)
    failures = [r for r in results if r is not True][:3]
    print(f"flood: {served} of {FLOOD} served{'; ' + str(failures) if failures else ''}")

    m = wait_until("the handshake timeout to cut the silent connections", lambda: metrics(probe),
                   lambda m: m["ringserve_tls_handshake_timeouts_total"] >= silent,
                   TIMEOUT_S, 0.2)
    for s in held:
        s.close()
    m = wait_until("the connections to come back", lambda: metrics(probe),
                   lambda m: m["ringserve_connections_open"] == base["ringserve_connections_open"],
                   TIMEOUT_S, 0.1)
    fds = wait_until("the descriptors to come back", lambda: fd_count(server.pid),
                     lambda n: n == base_fds, TIMEOUT_S, 0.1)
    print(f"silent: {m['ringserve_tls_handshake_timeouts_total']} cut by the handshake timeout; "
          f"connections {m['ringserve_connections_open']}, descriptors {fds} (before: {base_fds})")
    probe.sendall(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
    still = probe.recv(4096).startswith(b"HTTP/1.1 200 OK")
    ok = served == FLOOD and still and server.poll() is None
    print("all checks passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
