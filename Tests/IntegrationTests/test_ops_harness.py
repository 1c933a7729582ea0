"""Light tests of the shared harness itself (no daemon needed except the last)."""
from __future__ import annotations

import hashlib
import os
import socket

import pytest

from harness import (NotifyListener, default_config, ephemeral_range, free_port_range, iperf3_client,
                     port_is_free, received_bps, refused_port, release_ports, run_check_config)
from harness.daemon import has_line


def test_free_port_range_is_consecutive_bindable_and_outside_ephemeral():
    ports = free_port_range(8)
    try:
        assert ports == list(range(ports[0], ports[0] + 8))
        low, high = ephemeral_range()
        assert all(p < low or p > high for p in ports), (ports, low, high)
        held = []
        try:
            for p in ports:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s = socket.socket(socket.AF_INET, kind)
                    held.append(s)
                    s.bind(("127.0.0.1", p))
            # Now held: the same check must see them taken.
            assert not port_is_free(ports[0])
        finally:
            for s in held:
                s.close()
    finally:
        release_ports(ports)


def test_free_port_ranges_do_not_overlap_while_reserved():
    a = free_port_range(50)
    b = free_port_range(50)
    try:
        assert not set(a) & set(b)
    finally:
        release_ports(a + b)


def test_free_port_range_rejects_bad_arguments():
    with pytest.raises(ValueError):
        free_port_range(0)
    with pytest.raises(ValueError):
        free_port_range(1, proto="sctp")


def test_refused_port_refuses():
    port = refused_port()
    s = socket.socket()
    s.settimeout(2)
    try:
        with pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
    finally:
        s.close()
        release_ports([port])


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def _read_all(s: socket.socket) -> bytes:
    out = bytearray()
    while chunk := s.recv(65536):
        out += chunk
    return bytes(out)


def test_tcp_echo_passes_half_close_and_records(tcp_backend):
    b = tcp_backend("a", mode="echo")
    payload = os.urandom(300_000)
    with _connect(b.port) as s:
        local = s.getsockname()
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        assert _read_all(s) == payload
    assert b.wait_closed(1)
    (conn,) = b.connections
    assert conn.peer == local
    assert conn.bytes_received == len(payload)
    assert conn.sha256 == hashlib.sha256(payload).hexdigest()
    assert conn.eof and not conn.reset
    assert b.peers == [local]


def test_tcp_id_and_digest_modes(tcp_backend):
    named = tcp_backend("member-7", mode="id")
    with _connect(named.port) as s:
        s.sendall(b"x")
        s.shutdown(socket.SHUT_WR)
        assert _read_all(s) == b"member-7\nx"
    digest = tcp_backend("d", mode="digest")
    data = os.urandom(100_000)
    with _connect(digest.port) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        assert _read_all(s) == f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()
    sink = tcp_backend("s", mode="sink")
    with _connect(sink.port) as s:
        s.sendall(b"abc")
    assert sink.wait_closed(1)
    assert sink.bytes_received == 3
    assert sink.accepted == 1


def test_udp_echo_and_id(udp_backend):
    echo = udp_backend("e", mode="echo")
    named = udp_backend("u-2", mode="id")
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(5)
    try:
        c.bind(("127.0.0.1", 0))
        c.sendto(b"hello", echo.address)
        assert c.recvfrom(100) == (b"hello", echo.address)
        c.sendto(b"who", named.address)
        assert c.recvfrom(100) == (b"u-2", named.address)
        assert echo.sources == [c.getsockname()]
        assert echo.payloads == [b"hello"]
        assert named.count == 1
    finally:
        c.close()


def test_notify_listener_collects_datagrams(tmp_path):
    path = f"/tmp/fg-notify-test-{os.getpid()}.sock"
    listener = NotifyListener(path)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.sendto(b"STATUS=starting", path)
        s.sendto(b"READY=1\nSTATUS=2 listeners", path)
        s.close()
        i = listener.wait_for(has_line("READY=1"), 0, timeout=5)
        assert i == 1
        assert listener.messages == ["STATUS=starting", "READY=1\nSTATUS=2 listeners"]
        assert listener.wait_for(has_line("STOPPING=1"), 0, timeout=0.2) is None
    finally:
        listener.close()
        os.unlink(path)


@pytest.mark.iperf
def test_iperf3_helpers_direct(iperf3_server, port_range):
    (port,) = port_range(1, "tcp")
    iperf3_server(port)
    result = iperf3_client(port, seconds=1)
    assert received_bps(result) > 0


def test_check_config_accepts_shipped_example(flowgated_bin):
    config = default_config()
    if not config.exists():
        pytest.skip(f"{config} not written yet (the foundation ships it)")
    done = run_check_config(config, flowgated_bin)
    assert done.returncode == 0, done.stderr


def test_client_helpers_against_backends_directly(tcp_backend, udp_backend):
    from harness import tcp_exchange, tcp_member_name, tcp_roundtrip, udp_exchange
    echo = tcp_backend("e", mode="echo")
    named = tcp_backend("n1", mode="id")
    assert tcp_exchange(echo.port, b"ping") == b"ping"
    assert tcp_member_name(named.port, source="127.0.0.7") == "n1"
    assert named.peers[0][0] == "127.0.0.7"
    sent, received, n = tcp_roundtrip(echo.port, 8 << 20)
    assert n == 8 << 20 and sent == received
    u = udp_backend("u", mode="id")
    assert udp_exchange(u.port, b"x", source="127.0.0.9") == (b"u", ("127.0.0.1", u.port))
    assert u.sources[0][0] == "127.0.0.9"


def test_config_builders_make_the_design_shape():
    from harness import dump_config, member, port_ranges, single_pool_config
    import yaml
    assert port_ranges([5, 6, 7, 9]) == [{"FromPort": 5, "ToPort": 7}, {"FromPort": 9, "ToPort": 9}]
    assert port_ranges([(1, 2), (4, 4)]) == [{"FromPort": 1, "ToPort": 2}, {"FromPort": 4, "ToPort": 4}]
    cfg = single_pool_config([20000, 20001], [member(9001, weight=3), member(None)], workers=1)
    text = dump_config(cfg)
    back = yaml.safe_load(text)
    assert back == cfg
    (acc,) = back["accelerators"]
    (lst,) = acc["listeners"]
    assert lst["ListenerArn"].startswith(acc["AcceleratorArn"] + "/listener/")
    assert lst["PortRanges"] == [{"FromPort": 20000, "ToPort": 20001}]
    assert lst["pool_id"] == back["pools"][0]["id"]
    assert back["pools"][0]["members"] == [{"address": "127.0.0.1", "protocol_port": 9001, "weight": 3},
                                           {"address": "127.0.0.1"}]


def test_metrics_parser_and_promtool():
    from harness import metric_sum, parse_metrics, promtool_check, promtool_path
    text = ('# HELP flowgate_flows_total Flows opened.\n# TYPE flowgate_flows_total counter\n'
            'flowgate_flows_total{listener="l1",member="a"} 3\n'
            'flowgate_flows_total{listener="l1",member="b \\"q\\""} 4\n'
            'flowgate_up 1\n')
    samples = parse_metrics(text)
    assert metric_sum(samples, "flowgate_flows_total") == 7
    assert metric_sum(samples, "flowgate_flows_total", member='b "q"') == 4
    assert metric_sum(samples, "flowgate_up") == 1
    with pytest.raises(ValueError):
        parse_metrics("flowgate_up{oops} 1\n")
    if promtool_path() is None:
        pytest.skip("promtool not installed")
    assert promtool_check(text).returncode != 0  # flowgate_up has no HELP/TYPE: lint problem
    ok = text.replace("flowgate_up 1\n", "# HELP flowgate_up Up.\n# TYPE flowgate_up gauge\nflowgate_up 1\n")
    done = promtool_check(ok)
    assert done.returncode == 0, done.stdout + done.stderr
