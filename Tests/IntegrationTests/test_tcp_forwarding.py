"""Black-box TCP forwarding through the built flowgated (issue 2)."""
from __future__ import annotations

import collections
import socket

import pytest

from harness import (config, iperf3_client, listener, member, pool, received_bps, refused_port,
                     single_pool_config, tcp_exchange, tcp_member_name, tcp_roundtrip)


def test_every_port_of_a_range_forwards(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(16)
    daemon(single_pool_config(ports, [member(backend.port)], workers=2))
    for p in ports:
        payload = f"port {p}".encode()
        assert tcp_exchange(p, payload) == payload, f"port {p} did not echo"
    assert backend.accepted == len(ports)


def test_member_without_protocol_port_gets_the_port_the_client_reached(daemon, tcp_backend, port_range):
    ports = port_range(2)
    # Same port numbers on another loopback address (all of 127/8 is local).
    backends = [tcp_backend(f"b{p}", mode="id", port=p, host="127.0.0.2") for p in ports]
    daemon(single_pool_config(ports, [member(None, address="127.0.0.2")]))
    assert [tcp_member_name(p) for p in ports] == [f"b{p}" for p in ports]
    assert [b.accepted for b in backends] == [1, 1]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_256_mib_each_direction_arrive_with_equal_sha256(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    (port,) = port_range(1)
    daemon(single_pool_config([port], [member(backend.port)]))
    size = 256 << 20
    sent, received, count = tcp_roundtrip(port, size, timeout=200)
    assert count == size
    assert received == sent
    # The backend saw exactly what the client sent.
    assert backend.wait_closed(1)
    (record,) = backend.connections
    assert record.bytes_received == size
    assert record.sha256 == sent


def test_weights_3_to_1_over_400_connections(daemon, tcp_backend, port_range):
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    (port,) = port_range(1)
    daemon(single_pool_config([port], [member(a.port, weight=3), member(b.port, weight=1)], workers=2))
    seen = collections.Counter(tcp_member_name(port) for _ in range(400))
    assert set(seen) == {"a", "b"}
    assert abs(seen["a"] - 300) <= 20, seen
    assert abs(seen["b"] - 100) <= 20, seen


def test_refused_member_is_skipped_without_the_client_noticing(daemon, tcp_backend, port_range):
    good = tcp_backend("good", mode="echo")
    dead = refused_port()
    (port,) = port_range(1)
    d = daemon(single_pool_config([port], [member(dead), member(good.port)]))
    for i in range(20):
        msg = f"hello {i}".encode()
        assert tcp_exchange(port, msg) == msg
    assert good.accepted == 20
    assert not d.log_lines("flow_rejected")


def test_no_reachable_member_resets_the_client(daemon, port_range):
    (port,) = port_range(1)
    d = daemon(single_pool_config([port], [member(refused_port()), member(refused_port())]))
    # On loopback the RST can beat the client's own connect() back to user
    # space, so the reset shows up there or on the first read.
    with pytest.raises(ConnectionResetError):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.recv(16)
    rejected = d.log_lines("flow_rejected")
    assert len(rejected) == 1
    assert "tried=2" in rejected[0] and 'reason="no member reachable"' in rejected[0]


@pytest.mark.iperf
@pytest.mark.timeout(60)
def test_iperf3_tcp_three_seconds_through_the_daemon(daemon, iperf3_server, port_range):
    listen_port, server_port = port_range(2)
    iperf3_server(server_port)
    daemon(single_pool_config([listen_port], [member(server_port)]))
    result = iperf3_client(listen_port, seconds=3)
    assert received_bps(result) > 0
