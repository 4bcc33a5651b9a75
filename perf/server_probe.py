"""What the lab's memory scripts and the many-connections test ask a running ringserve-http:
its VmRSS, and /metrics on a kept connection. Imported, not run."""
import re
import resource


def raise_nofile():
    """The soft open-file limit raised to the hard one, which it returns."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_response(sock):
    """One whole response (Content-Length framed) from a blocking socket: (status, body)."""
    got = b""
    while True:
        head, sep, rest = got.partition(b"\r\n\r\n")
        if sep:
            length = int(re.search(rb"\r\nContent-Length: (\d+)", head).group(1))
            if len(rest) >= length:
                return int(head.split(b" ", 2)[1]), rest[:length]
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the answer ended")
        got += chunk


def metrics(sock):
    """GET /metrics on a kept connection: {series: value}, labels included in the name."""
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
    status, body = read_response(sock)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = int(value)
    return values
