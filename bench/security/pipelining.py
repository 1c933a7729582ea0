"""Issue 11 item 5 (pipelining): three requests in one write.

--connections (1,000) connections to the control endpoint (the Unix socket by
default; --transport tcp for the TCP endpoint, unauthenticated /healthz),
--concurrency (32) at a time (below the 64 served at once), each writes three
`GET /healthz` requests in one send and reads answers until it has three, the
server closes, or --timeout (15 s, beyond the server's 10 s timeout) passes.
Prints how many connected connections got 0, 1, 2 and 3 answers, how many of
the short ones the server closed or left to time out, connections refused at
connect, and the total and slowest time. --request picks the request.

    python bench/security/pipelining.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import socket
import threading
import time

import common as c

REQUESTS = {
    "healthz": b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "metrics": b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "list": (b"POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: GlobalAccelerator_V20180706.ListAccelerators\r\n"
             b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}"),
}


def add_args(ap) -> None:
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--pipelined", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--transport", choices=("unix", "tcp"), default="unix")
    ap.add_argument("--request", choices=sorted(REQUESTS), default="healthz",
                    help="healthz: GET /healthz; metrics: GET /metrics; list: POST / ListAccelerators")
    ap.add_argument("--half-close", action="store_true", help="shutdown(SHUT_WR) after the write, as `nc -N` does")


def count_responses(buf: bytes) -> int:
    """Complete HTTP/1.1 responses (Content-Length framed) at the start of buf."""
    n, pos = 0, 0
    while True:
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            return n
        length = 0
        for line in buf[pos:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if len(buf) < end + 4 + length:
            return n
        n += 1
        pos = end + 4 + length


def one(address, family, request: bytes, want: int, timeout: float, half_close: bool) -> tuple[int, str, float]:
    """(answers, how it ended, seconds)."""
    t = time.monotonic()
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    buf = b""
    how = "complete"
    try:
        try:
            s.connect(address)
        except OSError as error:
            return 0, "connect:" + type(error).__name__, time.monotonic() - t
        s.sendall(request * want)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        deadline = t + timeout
        while count_responses(buf) < want:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            data = s.recv(65536)
            if not data:
                how = "closed"
                break
            buf += data
    except socket.timeout:
        how = "timeout"
    except OSError as error:
        how = type(error).__name__
    finally:
        s.close()
    return count_responses(buf), how, time.monotonic() - t


def main(args) -> None:
    (data_port,) = c.ports(1)
    control_port = c.ports(1)[0] if args.transport == "tcp" else None
    cfg = c.single_pool_config([data_port], [c.member(c.ports(1)[0])], workers=1,
                               control=c.control_section(control_port, credentials=False))
    d = c.daemon(args, cfg)
    if args.transport == "tcp":
        address, family = ("127.0.0.1", control_port), socket.AF_INET
    else:
        address, family = d.control_socket, socket.AF_UNIX
    lock = threading.Lock()
    answers: dict[int, int] = {}
    short_closed = short_timeout = connect_failed = 0
    slowest = 0.0
    next_index = [0]

    def worker() -> None:
        nonlocal short_closed, short_timeout, connect_failed, slowest
        while True:
            with lock:
                if next_index[0] >= args.connections:
                    return
                next_index[0] += 1
            n, how, seconds = one(address, family, REQUESTS[args.request], args.pipelined, args.timeout,
                                  args.half_close)
            with lock:
                if how.startswith("connect:"):
                    connect_failed += 1
                    continue
                answers[n] = answers.get(n, 0) + 1
                slowest = max(slowest, seconds)
                if n < args.pipelined:
                    short_closed += how == "closed"
                    short_timeout += how == "timeout"
    t = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = time.monotonic() - t
    full = answers.get(args.pipelined, 0)
    c.result("8 pipelining", transport=args.transport, request=args.request, connections=args.connections,
             concurrency=args.concurrency, half_close=args.half_close, pipelined=args.pipelined, connect_failed=connect_failed,
             answers_per_conn=",".join(f"{k}:{answers.get(k, 0)}" for k in range(args.pipelined + 1)),
             all_answered=full, missing_answers=args.connections * args.pipelined - sum(k * v for k, v in answers.items()),
             short_closed_by_server=short_closed, short_timed_out=short_timeout,
             total_s=round(total, 2), slowest_conn_s=round(slowest, 2))


if __name__ == "__main__":
    c.run("8 pipelining", main, c.parse_args(__doc__, add_args, time_limit=600))
