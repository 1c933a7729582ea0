"""Run inside a network namespace (test_tcp_listener_options.py starts it with
`ip netns exec`): a backend and flowgated on the namespace's loopback, two
TCP Fast Open clients, and the namespace's TcpExt TCPFastOpenPassive counter
(connections whose SYN data the server took) before and after. Prints JSON.

    python3 netns_fastopen.py FLOWGATED_BINARY FASTOPEN_QUEUE|0
"""
from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import Daemon, TcpBackend, member, single_pool_config  # noqa: E402

MSG_FASTOPEN = 0x20000000
PORT = 20480   # a fresh namespace has every port free


def passive_fastopens() -> int:
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("TCPFastOpenPassive", 0))
    return 0


def fastopen_exchange(payload: bytes) -> bytes:
    with socket.socket() as s:
        # Data with the SYN; without a cookie yet the kernel sends a cookie
        # request and the data after the handshake. Blocking (a timeout makes
        # the socket non-blocking and the call EINPROGRESS).
        s.sendto(payload, MSG_FASTOPEN, ("127.0.0.1", PORT))
        s.settimeout(5)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got


def main() -> int:
    binary, queue = sys.argv[1], int(sys.argv[2])
    backend = TcpBackend("echo", mode="echo")
    extra = {"tcp_fastopen": queue} if queue else {}
    d = Daemon(single_pool_config([PORT], [member(backend.port)], listener_extra=extra), binary=binary)
    try:
        d.start()
        before = passive_fastopens()
        replies = [fastopen_exchange(b"fast open %d" % i) for i in range(3)]
        after = passive_fastopens()
        print(json.dumps({"replies": [r.decode() for r in replies], "passive": after - before,
                          "log": [l for l in d.log_lines() if "tcp_fastopen" in l]}))
    finally:
        d.stop()
        d.cleanup()
        backend.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
