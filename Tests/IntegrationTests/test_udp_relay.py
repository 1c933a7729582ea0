"""Black-box tests of the UDP relay (issue 3) through the spawned flowgated.

Every datagram is checked byte for byte; every wait is bounded; daemons and
backends are stopped by the fixtures even when a test fails.
"""
from __future__ import annotations

import os
import random
import socket
import time

import pytest

from harness import iperf3_client

PROJECT = "ac80359381a34f04b39a333b0ea5117a"
ACCEL = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81"
POOL_ID = "161835ef-0207-4300-ab5a-cf9c48f9f5ad"
LISTENER_ARN = ACCEL + "/listener/0a1b2c3d"
MAX_UDP = 65507


def member(backend_or_port, weight: int = 1, host: str = "127.0.0.1") -> dict:
    port = backend_or_port if isinstance(backend_or_port, int) else backend_or_port.port
    return {"address": host, "protocol_port": port, "weight": weight}


def udp_config(ports: list[int], members: list[dict], *, affinity: str = "NONE", bind: str = "127.0.0.1",
               idle_timeout: int | None = None, workers: int | None = None, also_tcp: bool = False,
               pool_protocol: str = "UDP") -> dict:
    """One UDP listener (and optionally a TCP listener on the same ports, for
    iperf3's control connection) in front of one pool."""
    listener = {
        "ListenerArn": LISTENER_ARN,
        "PortRanges": [{"FromPort": ports[0], "ToPort": ports[-1]}],
        "Protocol": "UDP",
        "ClientAffinity": affinity,
        "pool_id": POOL_ID,
        "bind": bind,
    }
    if idle_timeout is not None:
        listener["idle_timeout"] = idle_timeout
    listeners = [listener]
    pools = [{"id": POOL_ID, "name": "udp", "protocol": pool_protocol, "lb_algorithm": "ROUND_ROBIN",
              "members": members}]
    if also_tcp:
        tcp_pool = "261835ef-0207-4300-ab5a-cf9c48f9f5ad"
        listeners.append({"ListenerArn": ACCEL + "/listener/0a1b2c3e",
                          "PortRanges": [{"FromPort": ports[0], "ToPort": ports[-1]}],
                          "Protocol": "TCP", "ClientAffinity": affinity, "pool_id": tcp_pool, "bind": bind})
        pools.append({"id": tcp_pool, "name": "tcp", "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN",
                      "members": members})
    config = {"project_id": PROJECT, "accelerators": [{"AcceleratorArn": ACCEL, "listeners": listeners}],
              "pools": pools}
    if workers is not None:
        config["workers"] = workers
    return config


def client(host: str = "127.0.0.1", timeout: float = 2.0) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    s.bind((host, 0))
    s.settimeout(timeout)
    return s


def round_trip(s: socket.socket, payload: bytes, dest: tuple, tries: int = 1) -> tuple[bytes, tuple] | None:
    """Send and wait for one reply; resend up to `tries` times on timeout."""
    for _ in range(tries):
        s.sendto(payload, dest)
        try:
            data, source = s.recvfrom(65536)
            return data, source[:2]
        except socket.timeout:
            continue
    return None


def test_udp_echo_integrity_10000_random_sizes(daemon, udp_backend, port_range):
    """10,000 datagrams of random sizes 0..65,507 (both ends always included),
    sent one at a time (paced: one in flight, so no loopback buffer can
    overflow), every reply compared byte for byte with what was sent."""
    echo = udp_backend("echo", mode="echo")
    echo.keep_payloads = False
    ports = port_range(1)
    daemon(udp_config(ports, [member(echo)]))
    rng = random.Random(20261123)
    sizes = [0, MAX_UDP, 1, MAX_UDP - 1] + [rng.randint(0, MAX_UDP) for _ in range(10_000 - 4)]
    blob = os.urandom(MAX_UDP + 4096)
    s = client(timeout=5.0)
    mismatched, lost = [], []
    try:
        for i, size in enumerate(sizes):
            off = rng.randint(0, 4096)
            payload = blob[off:off + size]
            s.sendto(payload, ("127.0.0.1", ports[0]))
            try:
                data, source = s.recvfrom(65536)
            except socket.timeout:
                lost.append(i)
                continue
            if data != payload or source[:2] != ("127.0.0.1", ports[0]):
                mismatched.append((i, size, len(data), source))
    finally:
        s.close()
    assert mismatched == [], mismatched[:5]
    assert lost == [], f"{len(lost)} of 10000 lost: {lost[:10]}"
    assert echo.count == 10_000


def _member_per_source_port(port, n):
    """Sends one datagram from each of n fresh source ports; returns the member names that answered, in order."""
    answers = []
    socks = [client() for _ in range(n)]
    try:
        for s in socks:
            got = round_trip(s, b"hello", ("127.0.0.1", port), tries=3)
            assert got is not None
            answers.append(got[0].decode())
    finally:
        for s in socks:
            s.close()
    return answers


@pytest.mark.parametrize("workers", [1, 2])
def test_udp_source_ip_affinity_one_member_for_20_source_ports(daemon, udp_backend, port_range, workers):
    """SOURCE_IP: 20 source ports of one client IP land on one member; with 2
    workers the ports hash to different workers' sockets (SO_REUSEPORT), so
    this also checks that affinity is shared across workers (docs/architecture.md §3.3)."""
    a, b = udp_backend("a", mode="id"), udp_backend("b", mode="id")
    ports = port_range(1)
    daemon(udp_config(ports, [member(a), member(b)], affinity="SOURCE_IP", workers=workers))
    answers = _member_per_source_port(ports[0], 20)
    assert len(answers) == 20
    assert len(set(answers)) == 1, answers


def test_udp_no_affinity_spreads_source_ports(daemon, udp_backend, port_range):
    """NONE: the same 20 source ports are 20 flows, spread by round robin."""
    a, b = udp_backend("a", mode="id"), udp_backend("b", mode="id")
    ports = port_range(1)
    daemon(udp_config(ports, [member(a), member(b)], affinity="NONE", workers=1))
    answers = _member_per_source_port(ports[0], 20)
    assert answers.count("a") == 10 and answers.count("b") == 10, answers


def test_udp_two_clients_get_separate_flows(daemon, udp_backend, port_range):
    """Two client ports under NONE: two upstream sockets (two sources at the
    member), and each client gets exactly its own replies."""
    echo = udp_backend("echo", mode="echo")
    ports = port_range(1)
    daemon(udp_config(ports, [member(echo)]))
    c1, c2 = client(), client()
    try:
        for i in range(5):
            for c, tag in ((c1, b"one"), (c2, b"two")):
                got = round_trip(c, tag + bytes([i]), ("127.0.0.1", ports[0]))
                assert got == (tag + bytes([i]), ("127.0.0.1", ports[0]))
    finally:
        c1.close()
        c2.close()
    sources = echo.source_counts()
    assert len(sources) == 2, sources
    assert sorted(sources.values()) == [5, 5]


def test_udp_idle_expiry_frees_the_flow(daemon, udp_backend, port_range):
    """A live flow keeps its member across a weight change; once idle past
    idle_timeout it is gone, and the next datagram is a new flow that follows
    the new weights (and a new upstream socket)."""
    a, b = udp_backend("a", mode="id"), udp_backend("b", mode="id")
    ports = port_range(1)
    dest = ("127.0.0.1", ports[0])
    d = daemon(udp_config(ports, [member(a, 1), member(b, 0)], idle_timeout=10, workers=1))
    s = client()
    try:
        assert round_trip(s, b"x", dest, tries=3)[0] == b"a"
        d.write_config(udp_config(ports, [member(a, 0), member(b, 1)], idle_timeout=10, workers=1))
        d.sighup(wait=True)
        assert round_trip(s, b"x", dest, tries=3)[0] == b"a"     # live flow: never moved
        time.sleep(10.8)                     # idle > 10 s (the smallest idle_timeout) + 0.25 s sweep
        assert round_trip(s, b"x", dest, tries=3)[0] == b"b"     # expired: picked afresh
    finally:
        s.close()
    assert len(set(a.sources)) == 1 and len(set(b.sources)) == 1


def test_udp_refused_member_gets_its_flows_repicked(daemon, udp_backend, port_range):
    """A member whose port is closed answers ICMP port unreachable; the flow
    is re-picked to the other member on a following datagram."""
    closed = port_range(1)[0]          # reserved, nothing bound: draws ICMP port unreachable
    b = udp_backend("b", mode="id")
    ports = port_range(1)
    d = daemon(udp_config(ports, [member(closed), member(b)], workers=1))
    s = client(timeout=0.5)
    try:
        got = round_trip(s, b"x", ("127.0.0.1", ports[0]), tries=10)
        assert got is not None and got[0] == b"b"
        # The flow stays on b from now on.
        for _ in range(5):
            assert round_trip(s, b"y", ("127.0.0.1", ports[0]), tries=3)[0] == b"b"
    finally:
        s.close()
    lines = d.log_lines("udp_flow_repick")
    assert any("reason=port_unreachable" in l for l in lines), d.stderr_text()[-2000:]


@pytest.mark.parametrize("bind,client_host,dests", [
    ("127.0.0.1", "127.0.0.1", ["127.0.0.1"]),
    ("0.0.0.0", "127.0.0.1", ["127.0.0.1", "127.0.0.2", "127.0.0.3"]),
    ("::", "127.0.0.1", ["127.0.0.1", "127.0.0.2"]),
    ("::", "::1", ["::1"]),
])
def test_udp_replies_come_from_the_listener_address_and_port(daemon, udp_backend, port_range,
                                                             bind, client_host, dests):
    """recvfrom's source is exactly the address and port the client sent to,
    also on a wildcard bind (IP_PKTINFO / IPV6_PKTINFO)."""
    echo = udp_backend("echo", mode="echo")
    ports = port_range(1)
    daemon(udp_config(ports, [member(echo)], bind=bind))
    for dest_host in dests:
        s = client(client_host)
        try:
            got = round_trip(s, b"where", (dest_host, ports[0]), tries=3)
            assert got is not None
            assert got[0] == b"where"
            assert got[1] == (dest_host, ports[0])
        finally:
            s.close()


@pytest.mark.iperf
def test_udp_iperf3_smoke(daemon, iperf3_server, port_range):
    """iperf3 -u through flowgated: the port carries a TCP listener (iperf3's
    control connection) and a UDP listener (its datagrams), both to the one
    iperf3 server."""
    backend_port = port_range(1)[0]
    iperf3_server(backend_port)
    ports = port_range(1)
    daemon(udp_config(ports, [member(backend_port)], also_tcp=True))
    result = iperf3_client(ports[0], udp=True, bitrate="20M", seconds=2, length="1400")
    summary = result["end"]["sum"]
    assert summary["packets"] > 1000
    assert summary["lost_percent"] < 5.0, summary


def test_udp_out_of_descriptors_evicts_the_least_recently_used_flow(daemon, udp_backend, port_range,
                                                                     flowgated_bin, tmp_path):
    """Every flow holds an upstream socket. Under an open-files limit of 400,
    800 flows from 800 source ports all get their reply: when socket() fails
    with EMFILE the least recently used session gives up its descriptor."""
    wrapper = tmp_path / "flowgated-nofile-400"
    wrapper.write_text(f'#!/bin/sh\nexec prlimit --nofile=400:400 {flowgated_bin} "$@"\n')
    wrapper.chmod(0o755)
    echo = udp_backend("echo", mode="echo")
    echo.keep_payloads = False
    ports = port_range(1)
    d = daemon(udp_config(ports, [member(echo)], workers=1), binary=wrapper)
    answered = 0
    for i in range(800):
        s = client()
        try:
            got = round_trip(s, b"%d" % i, ("127.0.0.1", ports[0]), tries=2)
            answered += got is not None and got[0] == b"%d" % i
        finally:
            s.close()
    assert answered == 800
    assert d.log_lines("udp_upstream_failed") == []
    assert len(os.listdir(f"/proc/{d.pid}/fd")) <= 400


def test_sigterm_drain_keeps_a_live_udp_session_until_it_goes_quiet(daemon, udp_backend, port_range):
    """SIGTERM with a UDP conversation going on: it keeps being answered
    through the drain, a new client gets nothing, and once the conversation
    pauses (1 s of silence ends a session while draining) the daemon exits 0,
    long before its 30 s drain timeout and the session's 30 s idle timeout."""
    import signal
    echo = udp_backend("echo", mode="echo")
    ports = port_range(1)
    cfg = udp_config(ports, [member(echo)], idle_timeout=30)
    cfg["tuning"] = {"drain_timeout": 30}
    d = daemon(cfg)
    dest = ("127.0.0.1", ports[0])
    live, late = client(timeout=0.5), client(timeout=0.5)
    try:
        assert round_trip(live, b"before", dest, tries=3) == (b"before", dest)
        d.signal(signal.SIGTERM)
        d.wait_notification("STOPPING=1")
        answered = 0
        for i in range(15):                       # 1.5 s of conversation during the drain
            got = round_trip(live, b"during %d" % i, dest)
            answered += got == (b"during %d" % i, dest)
            quiet_from = time.monotonic()         # the last exchange so far
            time.sleep(0.1)
        assert answered == 15
        assert round_trip(late, b"new client", dest) is None
        assert d.proc.poll() is None, "the drain must wait for the live session"
        assert d.wait_exit(10) == 0               # the conversation paused at quiet_from
        assert 0.9 <= time.monotonic() - quiet_from < 5
    finally:
        live.close()
        late.close()
    assert d.log_lines("drained")
    draining = d.log_lines("draining")
    assert len(draining) == 1 and "udp_sessions=1" in draining[0], draining
    assert b"new client" not in echo.payloads
