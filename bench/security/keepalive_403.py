"""Issue 11 item 2 (403 keep-alive holders): refused clients that keep their
connections open.

--holders (default 70, more than the 64 control connections served at once)
unauthenticated clients each send `POST /` (ListAccelerators, no
Authorization) on the TCP control endpoint, get their 403 and keep the
connection alive. Then a request signed with botocore's SigV4Auth
(ListAccelerators) on a new connection: its status, and how many holders were
answered 403 and were still open when it was sent.

    python bench/security/keepalive_403.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import http.client
import json

import common as c


def add_args(ap) -> None:
    ap.add_argument("--holders", type=int, default=70)


def main(args) -> None:
    (data_port,) = c.ports(1)
    (control_port,) = c.ports(1)
    cfg = c.single_pool_config([data_port], [c.member(c.ports(1)[0])], workers=1,
                               control=c.control_section(control_port))
    c.daemon(args, cfg)
    body = b"{}"
    unsigned = {"X-Amz-Target": c.TARGET_PREFIX + "ListAccelerators", "Content-Type": "application/x-amz-json-1.1"}
    holders: list[http.client.HTTPConnection] = []
    c.at_exit(lambda: [h.close() for h in holders])
    statuses: dict[int, int] = {}
    for _ in range(args.holders):
        h = http.client.HTTPConnection("127.0.0.1", control_port, timeout=5)
        holders.append(h)
        try:
            status, headers, _ = c.tcp_request(control_port, "POST", "/", body, unsigned, conn=h)
        except OSError as error:
            status = type(error).__name__
            headers = {}
        statuses[status] = statuses.get(status, 0) + 1
    still_open = sum(1 for h in holders if c.peer_open(h.sock))
    signed = c.sigv4_headers(control_port, "ListAccelerators", body)
    status, headers, answer = c.tcp_request(control_port, "POST", "/", body, signed)
    try:
        message = json.loads(answer).get("message", "")
    except ValueError:
        message = answer[:80].decode("utf-8", "replace")
    c.result("4 keepalive-403", holders=args.holders,
             holder_answers=",".join(f"{k}x{v}" for k, v in sorted(statuses.items(), key=str)),
             holders_kept_open=still_open, signed_status=status, signed_message=repr(message[:80]),
             verdict="LOCKED-OUT" if status != 200 else "served")


if __name__ == "__main__":
    c.run("4 keepalive-403", main, c.parse_args(__doc__, add_args, time_limit=60))
