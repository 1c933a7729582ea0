"""Connection log (issue 6): with `connection_log: true` a listener logs one
line when a flow opens and one when it closes (client, member, bytes each
way, duration); without it, none."""
from __future__ import annotations

import os
import socket
import time

import pytest

from harness import config, listener, member, pool, tcp_exchange
from harness.daemon import log_fields


fields = log_fields


def wait_lines(d, event: str, n: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = d.log_lines(event)
        if len(lines) >= n:
            return lines
        time.sleep(0.05)
    return d.log_lines(event)


@pytest.mark.timeout(60)
def test_tcp_and_udp_flows_are_logged_only_where_asked(daemon, tcp_backend, udp_backend, port_range):
    logged_port, quiet_port, udp_port = port_range(3)
    echo = tcp_backend("echo", mode="echo")
    uecho = udp_backend("uecho", mode="echo")
    tp = pool([member(echo.port)])
    up = pool([member(uecho.port)], protocol="UDP")
    d = daemon(config([listener([logged_port], tp["id"], connection_log=True),
                       listener([quiet_port], tp["id"]),
                       listener([udp_port], up["id"], protocol="UDP", connection_log=True, idle_timeout=1)],
                      [tp, up], workers=2))
    logged_arn, quiet_arn, udp_arn = [l["ListenerArn"] for l in d.config["accelerators"][0]["listeners"]]

    data = os.urandom(12345)
    assert tcp_exchange(logged_port, data) == data
    assert tcp_exchange(quiet_port, b"x") == b"x"
    closed = wait_lines(d, "flow_closed", 1)
    assert len(closed) == 1, d.stderr_text()[-2000:]
    f = fields(closed[0])
    assert f["listener"] == logged_arn
    assert f["bytes_in"] == "12345" and f["bytes_out"] == "12345"
    assert f["member"] != "-" and f["reason"] == "done"
    assert 0 <= float(f["duration_s"]) < 5
    opened = d.log_lines("flow_opened")
    assert len(opened) == 1 and fields(opened[0])["listener"] == logged_arn
    assert not [l for l in d.log_lines() if quiet_arn in l and "flow_" in l]

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        for n in (10, 20, 30):
            s.sendto(b"u" * n, ("127.0.0.1", udp_port))
            assert len(s.recv(100)) == n
    assert len(wait_lines(d, "udp_flow_opened", 1)) == 1
    # Closed at idle expiry (idle_timeout 1 s).
    closed = wait_lines(d, "udp_flow_closed", 1, timeout=5)
    assert len(closed) == 1, d.stderr_text()[-2000:]
    f = fields(closed[0])
    assert f["listener"] == udp_arn
    assert (f["datagrams_in"], f["datagrams_out"], f["bytes_in"], f["bytes_out"]) == ("3", "3", "60", "60")
    assert 1 <= float(f["duration_s"]) < 5
