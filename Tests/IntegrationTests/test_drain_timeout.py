"""Draining (issue 6): weight 0 lets live TCP connections go on; a pool's
`connection_drain` {enable, timeout} closes what is left after the timeout,
and only in that pool."""
from __future__ import annotations

import json
import socket
import time

import pytest

from harness import config, listener, member, pool
from harness.metrics import metric_sum, parse_metrics


def echo_once(s: socket.socket, data: bytes) -> bytes:
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def set_weight(d, pool_id: str, weight: int) -> None:
    base = f"/v3/{d.config['project_id']}/elb/pools/{pool_id}/members"
    status, _, body = d.request("GET", base)
    assert status == 200, body
    member_id = json.loads(body)["members"][0]["id"]
    status, _, body = d.request("PUT", f"{base}/{member_id}", body={"member": {"weight": weight}})
    assert status == 200, body


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_drain_timeout_closes_leftover_connections_of_its_pool_only(daemon, tcp_backend, port_range):
    drained_port, kept_port = port_range(2)
    a = tcp_backend("a", mode="echo")
    b = tcp_backend("b", mode="echo")
    drained = pool([member(a.port)], connection_drain={"enable": True, "timeout": 10})
    kept = pool([member(b.port)])
    d = daemon(config([listener([drained_port], drained["id"]), listener([kept_port], kept["id"])],
                      [drained, kept], workers=2))
    c1 = socket.create_connection(("127.0.0.1", drained_port), timeout=5)
    c2 = socket.create_connection(("127.0.0.1", kept_port), timeout=5)
    try:
        assert echo_once(c1, b"one") == b"one"
        assert echo_once(c2, b"two") == b"two"
        set_weight(d, drained["id"], 0)
        set_weight(d, kept["id"], 0)
        start = time.monotonic()
        assert d.log_lines("drain_started"), d.stderr_text()[-2000:]

        # Weight 0: no new flows, but live ones go on until the deadline.
        time.sleep(5)
        assert echo_once(c1, b"still") == b"still"
        assert echo_once(c2, b"still") == b"still"

        # At 10 s the drained pool's connection is closed (EOF or reset).
        c1.settimeout(10)
        try:
            end = c1.recv(16)
        except ConnectionResetError:
            end = b""
        elapsed = time.monotonic() - start
        assert end == b""
        assert 9.5 <= elapsed <= 12, elapsed
        # The other pool has no drain timeout: its connection still relays.
        assert echo_once(c2, b"after") == b"after"
        status, _, body = d.request("GET", "/metrics")
        samples = parse_metrics(body.decode())
        assert metric_sum(samples, "flowgate_drain_closed_connections_total") == 1
        assert len(d.log_lines("drain_closed")) == 1
    finally:
        c1.close()
        c2.close()
