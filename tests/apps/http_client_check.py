#!/usr/bin/env python3
"""Drives a running ringserve-http with Python's http.client, the way a library client would.

Usage: http_client_check.py PORT [HOST]

On one keep-alive HTTPConnection: GET /plaintext, GET /json (parsed), POST /echo with a binary
body, HEAD /plaintext, a 404, and GET /plaintext again. Prints one line per check and exits 0
only when every answer is right and every request used the same connection.
"""
import http.client
import json
import sys


def main() -> int:
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    conn = http.client.HTTPConnection(host, port, timeout=10)
    failures = []
    first_socket = None

    def check(what, condition, detail=""):
        print(("ok   " if condition else "FAIL ") + what + (f": {detail}" if detail else ""))
        if not condition:
            failures.append(what)

    def exchange(method, path, body=None, headers=None):
        nonlocal first_socket
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        # http.client drops the socket after a response that closes the connection, and a
        # new request would silently reconnect: the same socket object proves keep-alive.
        if first_socket is None:
            first_socket = conn.sock
        check(f"{method} {path} kept the connection open",
              conn.sock is not None and conn.sock is first_socket)
        return response, data

    r, data = exchange("GET", "/plaintext")
    check("GET /plaintext is 200 Hello, World!", r.status == 200 and data == b"Hello, World!",
          f"{r.status} {data!r}")
    check("GET /plaintext headers", r.getheader("Content-Type") == "text/plain"
          and r.getheader("Content-Length") == "13" and r.getheader("Server") == "ringserve"
          and len(r.getheader("Date", "")) == 29, str(r.getheaders()))

    r, data = exchange("GET", "/json")
    try:
        parsed = json.loads(data)
    except ValueError as e:
        parsed = f"not JSON: {e}"
    check("GET /json is 200 application/json", r.status == 200
          and r.getheader("Content-Type") == "application/json", str(r.getheaders()))
    check("GET /json parses to the message", parsed == {"message": "Hello, World!"}, repr(parsed))

    body = bytes(range(256)) * 8 + b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"
    r, data = exchange("POST", "/echo", body=body,
                       headers={"Content-Type": "application/octet-stream"})
    check("POST /echo round-trips the body", r.status == 200 and data == body,
          f"{r.status}, {len(data)} of {len(body)} bytes")

    r, data = exchange("HEAD", "/plaintext")
    check("HEAD /plaintext has Content-Length 13 and no body",
          r.status == 200 and r.getheader("Content-Length") == "13" and data == b"",
          f"{r.status} {r.getheader('Content-Length')} {data!r}")

    r, data = exchange("GET", "/no/such/path")
    check("GET /no/such/path is 404", r.status == 404, f"{r.status} {data!r}")

    # After HEAD and 404 the framing must still be right: any stray body bytes would show here.
    r, data = exchange("GET", "/plaintext")
    check("GET /plaintext after them is still right",
          r.status == 200 and data == b"Hello, World!", f"{r.status} {data!r}")

    local = first_socket.getsockname() if first_socket else None
    conn.close()
    if failures:
        print(f"http_client_check: {len(failures)} failed: {', '.join(failures)}")
        return 1
    print(f"http_client_check: 6 requests on one connection from {local}: all ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
