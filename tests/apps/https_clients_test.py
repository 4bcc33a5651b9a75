#!/usr/bin/env python3
"""HTTPS with real clients: ringserve-http started with a fresh certificate (made by the openssl
command) on one backend, then driven by curl (verifying the certificate; a static file whole and
by Range), Python's ssl module (keep-alive through http.client, and 16 requests pipelined on one
raw TLS socket), openssl s_client (ALPN http/1.1), and wrk over https, whose request count the
server's /metrics must match. A plain HTTP request on the TLS port gets the 400 that says so.

Usage: https_clients_test.py BIN_DIR --backend uring|epoll|threads
Prints one line per check; exits 0 only when every check passed (77: a tool is missing).
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "perf"))
from server_probe import (  # noqa: E402
    ServerDidNotStart, check, metrics_port, parse_metrics, start_server, summary)

TIMEOUT_S = 30


def make_certificate(directory, name="cert"):
    cert, key = os.path.join(directory, f"{name}.pem"), os.path.join(directory, f"{name}-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days",
                    "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=TIMEOUT_S)
    return cert, key


def metrics(context, port):
    conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=TIMEOUT_S)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return parse_metrics(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("--backend", required=True)
    args = parser.parse_args()
    missing = [t for t in ("openssl", "curl") if shutil.which(t) is None]
    if missing:
        print(f"SKIP: {', '.join(missing)} not installed (scripts/setup.sh installs them)")
        return 77
    if shutil.which("wrk") is None:
        check("wrk is installed (scripts/setup.sh installs it)", False)

    with tempfile.TemporaryDirectory(prefix="rs-https-") as directory:
        cert, key = make_certificate(directory)
        root = os.path.join(directory, "root")
        os.mkdir(root)
        data = bytes((i * 7 + i // 1000) % 251 for i in range(200000))
        with open(os.path.join(root, "file.bin"), "wb") as f:
            f.write(data)
        try:
            server, port, line = start_server(
                os.path.join(args.bin_dir, "ringserve-http"),
                ["--backend", args.backend, "--tls-cert", cert, "--tls-key", key, "--root", root,
                 # /plaintext, /json and /echo beside the files; with --root, /metrics is served
                 # on a listener of its own only
                 "--demo-routes", "on", "--metrics-listen", "127.0.0.1:0,tls"])
            metrics_at = metrics_port(line)
        except ServerDidNotStart as e:
            check("the server starts with --tls-cert and --tls-key", False, str(e))
            return 1
        try:
            check("the start-up line describes the certificate", "tls=TLS 1.2+ (CN=localhost" in line,
                  line)
            run_clients(port, metrics_at, cert, data)
            reload_under_load(server, port, metrics_at, directory, cert, key)
            offered_groups(args.bin_dir, args.backend, cert, key)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.kill()
                code = "killed"
            check("the server exits 0 on SIGTERM", code == 0, f"exit status {code}")
    return summary()


def run_clients(port, metrics_at, cert, data):
    context = ssl.create_default_context(cafile=cert)
    resolve = ["--resolve", f"localhost:{port}:127.0.0.1"]
    base = f"https://localhost:{port}"

    # curl, verifying the certificate and the name.
    r = subprocess.run(["curl", "-sS", "--cacert", cert, *resolve, f"{base}/plaintext"],
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    check("curl --cacert GET /plaintext", r.returncode == 0 and r.stdout == "Hello, World!",
          r.stderr.strip() or r.stdout[:80])
    r = subprocess.run(["curl", "-sS", "--cacert", cert, *resolve, f"{base}/file.bin"],
                       capture_output=True, timeout=TIMEOUT_S)
    check("curl: a 200 KB static file, whole", r.returncode == 0 and r.stdout == data,
          f"{len(r.stdout)} bytes")
    r = subprocess.run(["curl", "-sS", "-i", "--cacert", cert, *resolve, "-r", "1000-70999",
                        f"{base}/file.bin"], capture_output=True, timeout=TIMEOUT_S)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    check("curl: Range 1000-70999 over TLS is a 206 with those bytes",
          head.startswith(b"HTTP/1.1 206") and body == data[1000:71000],
          head.split(b"\r\n")[0].decode(errors="replace"))

    # Python: keep-alive through http.client, on one connection.
    conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=TIMEOUT_S)
    sockets = set()
    ok = True
    for path, want in (("/plaintext", b"Hello, World!"), ("/json", b'{"message":"Hello, World!"}'),
                       ("/plaintext", b"Hello, World!")):
        conn.request("GET", path)
        resp = conn.getresponse()
        ok = ok and resp.status == 200 and resp.read() == want
        sockets.add(id(conn.sock))
    conn.request("POST", "/echo", body=data[:50000], headers={"Content-Type": "x/y"})
    resp = conn.getresponse()
    ok = ok and resp.status == 200 and resp.read() == data[:50000]
    check("python ssl: keep-alive GET, GET, GET, POST on one connection",
          ok and len(sockets) == 1, f"{len(sockets)} connections")
    check("python ssl: ALPN http/1.1 is accepted",
          conn.sock.selected_alpn_protocol() in (None, "http/1.1"))
    conn.close()

    # Python: 16 requests pipelined in one write on a raw TLS socket, answered in order.
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.set_alpn_protocols(["http/1.1"])
    with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        check("python ssl: ALPN offered http/1.1, selected http/1.1",
              tls.selected_alpn_protocol() == "http/1.1", str(tls.selected_alpn_protocol()))
        paths = [f"/plaintext?{i}" for i in range(15)] + ["/json"]
        tls.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for p in paths))
        got = b""
        want_answers = len(paths)
        while got.count(b"HTTP/1.1 200 OK") < want_answers or not got.endswith(b"}"):
            chunk = tls.recv(65536)
            if not chunk:
                break
            got += chunk
        check("python ssl: 16 pipelined requests, 16 answers in order",
              got.count(b"HTTP/1.1 200 OK") == 16 and got.endswith(b'{"message":"Hello, World!"}'),
              f"{got.count(b'HTTP/1.1 200 OK')} answers")

    # openssl s_client: the handshake as the command line tool makes it.
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        "localhost", "-alpn", "http/1.1", "-CAfile", cert, "-quiet",
                        "-verify_return_error"],
                       input=b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                       capture_output=True, timeout=TIMEOUT_S)
    check("openssl s_client: verified, and answered 200",
          b"HTTP/1.1 200 OK" in r.stdout and r.stdout.endswith(b"Hello, World!"),
          r.stderr.decode(errors="replace").strip().splitlines()[-1:] or "")
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-alpn", "h2"],
                       input=b"", capture_output=True, timeout=TIMEOUT_S)
    check("openssl s_client offering only h2 is refused (no_application_protocol)",
          b"no application protocol" in r.stdout + r.stderr)

    # A plain HTTP request on the TLS port.
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as s:
        s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    check("plain HTTP on the TLS port: 400 and a close",
          answer.startswith(b"HTTP/1.1 400 Bad Request") and b"https://" in answer)

    # wrk over https: the server counts the requests wrk says it made.
    before = metrics(context, metrics_at)
    r = subprocess.run(["wrk", "-t1", "-c8", "-d1s", f"https://127.0.0.1:{port}/plaintext"],
                       capture_output=True, text=True, timeout=TIMEOUT_S)
    match = re.search(r"(\d+) requests in", r.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", r.stdout)
    after = metrics(context, metrics_at)
    served = (after["ringserve_http_requests_total"] - before["ringserve_http_requests_total"] -
              1)  # the /metrics that read `before`
    done = int(match.group(1)) if match else -1
    # wrk counts the requests it saw answered; it may have sent up to one more per connection
    # when its time ran out.
    check("wrk over https: no errors, and /metrics counts what wrk made",
          done > 0 and errors is None and done <= served <= done + 8,
          f"wrk {done}, server {served}")
    check("TLS handshakes counted (curl, python, s_client, wrk)",
          after["ringserve_tls_handshakes_total"] >= 8 + 5,
          str(after["ringserve_tls_handshakes_total"]))


def offered_groups(bin_dir, backend, cert, key):
    """--tls-groups P-256: a client that offers only X25519 gets a handshake failure, one that
    offers P-256 is served with it."""
    server, port, line = start_server(
        os.path.join(bin_dir, "ringserve-http"),
        ["--backend", backend, "--tls-cert", cert, "--tls-key", key, "--tls-groups", "P-256"])
    try:
        def s_client(group):
            return subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                 "localhost", "-CAfile", cert, "-groups", group, "-verify_return_error",
                 "-ign_eof"],
                input=b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                capture_output=True, timeout=TIMEOUT_S)
        r = s_client("P-256")
        check("--tls-groups P-256: a P-256 client is served, with P-256",
              b"HTTP/1.1 200 OK" in r.stdout and b"Server Temp Key: ECDH, prime256v1" in r.stdout,
              r.stdout.decode(errors="replace")[-300:])
        r = s_client("X25519")
        check("--tls-groups P-256: an X25519-only client is refused",
              b"HTTP/1.1 200 OK" not in r.stdout and r.returncode != 0,
              r.stderr.decode(errors="replace")[-300:])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()


def reload_under_load(server, port, metrics_at, directory, cert, key):
    """SIGHUP with a new certificate in place while wrk runs: no request fails, and a new
    connection then verifies against the new certificate only."""
    new_cert, new_key = make_certificate(directory, "second")
    context = ssl.create_default_context(cafile=cert)
    before = metrics(context, metrics_at)
    wrk = subprocess.Popen(["wrk", "-t1", "-c8", "-d2s", f"https://127.0.0.1:{port}/plaintext"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)  # the stimulus comes while wrk runs, whatever wrk has done by then
    shutil.copyfile(new_cert, cert)
    shutil.copyfile(new_key, key)
    server.send_signal(signal.SIGHUP)
    out, _ = wrk.communicate(timeout=TIMEOUT_S)
    match = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    check("wrk over a SIGHUP that reloads the certificate: no errors",
          match is not None and int(match.group(1)) > 0 and errors is None,
          match.group(0) if match and errors is None else out.strip()[-300:])
    new_context = ssl.create_default_context(cafile=new_cert)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            after = metrics(new_context, metrics_at)
            break
        except ssl.SSLCertVerificationError:
            if time.monotonic() > deadline:
                check("after the SIGHUP a new connection verifies against the new certificate",
                      False)
                return
            time.sleep(0.05)
    check("after the SIGHUP a new connection verifies against the new certificate", True)
    check("wrk's requests all counted across the reload",
          after["ringserve_http_requests_total"] - before["ringserve_http_requests_total"] - 1
          >= int(match.group(1)) if match else False)


if __name__ == "__main__":
    sys.exit(main())
