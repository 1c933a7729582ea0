"""Black-box tests of remembered choices (issue 4, docs/architecture.md §3.3): the
pool's session persistence and the listener's client affinity, through the
spawned flowgated with real loopback connections and datagrams.

Every pool here is ROUND_ROBIN with two members of weight 1, whose picks go
a, b, a, b, ... (the scores are shared by every worker): a client that keeps
one member across connections does so only because something remembered it.
Clients are told apart by source address (127.0.0.x, all local on Linux).
"""
from __future__ import annotations

import socket
import time

import pytest

from harness.clients import recv_line, tcp_connect
from harness.selection import fixed_members, names_of_connections, selection_config, udp_member_names

PERSISTENCE_TIMEOUT_S = 60      # persistence_timeout: 1 minute, the minimum (docs/api.md §4.4)
EXPIRY_MARGIN_S = 4


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_session_persistence_source_ip_holds_then_lets_go(daemon, tcp_backend, port_range):
    """Pool session_persistence SOURCE_IP, persistence_timeout 1 minute.

    RR pick 1: client X (127.0.0.2) -> a. Its next 6 connections (each closed
    before the next, plus a 2 s pause with no live flow) stay on a: RR is not
    consulted. New clients Y and Z take RR picks 2 and 3 (b, then a), showing
    the algorithm still alternates for clients it has not seen. X's last
    connection then closes and 60 s + margin pass with no traffic from X: its
    entry has expired, so its next connection is RR pick 4, which is b.
    (Under persistence that never expired, it would be a.) After that, X is
    remembered on b."""
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    ports = port_range(1)
    daemon(selection_config(ports, fixed_members([a, b]),
                            session_persistence={"type": "SOURCE_IP", "persistence_timeout": 1}))
    port = ports[0]
    x, y, z = "127.0.0.2", "127.0.0.3", "127.0.0.4"

    assert names_of_connections(port, 1, source=x) == ["a"]
    assert names_of_connections(port, 3, source=x) == ["a"] * 3
    time.sleep(2)
    assert names_of_connections(port, 3, source=x) == ["a"] * 3
    assert names_of_connections(port, 1, source=y) == ["b"]
    assert names_of_connections(port, 1, source=z) == ["a"]
    assert names_of_connections(port, 2, source=y) == ["b", "b"]
    # X's last flow ends here (tcp_member_name closes before returning; the
    # daemon releases a moment later, so the entry expires at most then + 60 s).
    assert names_of_connections(port, 1, source=x) == ["a"]
    last_close = time.monotonic()
    assert a.wait_closed(timeout=10) and b.wait_closed(timeout=10)

    time.sleep(max(0.0, last_close + PERSISTENCE_TIMEOUT_S + EXPIRY_MARGIN_S - time.monotonic()))

    assert names_of_connections(port, 1, source=x) == ["b"], "X was still held on a after its persistence timeout"
    assert names_of_connections(port, 3, source=x) == ["b"] * 3


def test_session_persistence_replaces_a_member_that_is_no_longer_eligible(daemon, tcp_backend, port_range):
    """Pool session_persistence SOURCE_IP over ROUND_ROBIN a, b.

    Client X is remembered on a (RR pick 1) and holds a connection there.
    SIGHUP sets a's weight to 0 (drain): X's next connection cannot use the
    remembered a, so it is re-picked (b, the only eligible member) and the
    new choice remembered; X's held connection on a keeps working (weight 0
    takes no new flows, live ones continue). A second SIGHUP gives a its
    weight back: X stays on b, because the entry now says b (a table that
    was not overwritten would send X back to a)."""
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    ports = port_range(1)
    persistence = {"type": "SOURCE_IP", "persistence_timeout": 1}
    d = daemon(selection_config(ports, fixed_members([a, b]), session_persistence=persistence))
    x = "127.0.0.2"

    with tcp_connect(ports[0], source=x) as held:
        assert recv_line(held).decode() == "a"
        assert names_of_connections(ports[0], 2, source=x) == ["a", "a"]

        d.write_config(selection_config(ports, fixed_members([a, b], weights=[0, 1]),
                                        session_persistence=persistence))
        d.sighup(wait=True)
        assert names_of_connections(ports[0], 3, source=x) == ["b"] * 3
        held.sendall(b"still here\n")
        assert recv_line(held) == b"still here"

        d.write_config(selection_config(ports, fixed_members([a, b], weights=[1, 1]),
                                        session_persistence=persistence))
        d.sighup(wait=True)
        assert names_of_connections(ports[0], 3, source=x) == ["b"] * 3
    # A new client still gets RR picks over both members again.
    assert sorted(names_of_connections(ports[0], 1, source="127.0.0.3")
                  + names_of_connections(ports[0], 1, source="127.0.0.4")) == ["a", "b"]


def test_client_affinity_source_ip_udp_flows_from_many_ports_share_one_member(daemon, udp_backend, port_range):
    """UDP listener with ClientAffinity SOURCE_IP over a ROUND_ROBIN UDP pool:
    20 sockets of client 127.0.0.2 (20 source ports; with two workers the
    kernel spreads them over both workers' SO_REUSEPORT sockets) all reach
    member a, RR's first pick; then client 127.0.0.3's 20 sockets all reach
    b, RR's second pick."""
    a, b = udp_backend("a", mode="id"), udp_backend("b", mode="id")
    ports = port_range(1)
    daemon(selection_config(ports, fixed_members([a, b]), protocol="UDP", client_affinity="SOURCE_IP"))

    assert udp_member_names(ports[0], 20, source="127.0.0.2") == ["a"] * 20
    assert udp_member_names(ports[0], 20, source="127.0.0.3") == ["b"] * 20
    assert a.count == 20 and b.count == 20


def test_client_affinity_none_udp_flows_from_many_ports_alternate(daemon, udp_backend, port_range):
    """The same with ClientAffinity NONE: each source port is its own flow
    (5-tuple key), so the 20 flows take RR picks 1..20: a, b, a, b, ...
    exactly 10 each."""
    a, b = udp_backend("a", mode="id"), udp_backend("b", mode="id")
    ports = port_range(1)
    daemon(selection_config(ports, fixed_members([a, b]), protocol="UDP", client_affinity="NONE"))

    names = udp_member_names(ports[0], 20, source="127.0.0.2")
    assert names == ["a", "b"] * 10


def _names_and_source_ports(port: int, count: int, source: str) -> tuple[list[str], set[int]]:
    names, source_ports = [], set()
    for _ in range(count):
        with tcp_connect(port, source=source) as s:
            source_ports.add(s.getsockname()[1])
            names.append(recv_line(s).decode())
    return names, source_ports


def test_client_affinity_source_ip_tcp_connections_share_one_member(daemon, tcp_backend, port_range):
    """TCP listener with ClientAffinity SOURCE_IP over a ROUND_ROBIN pool:
    client X's 8 connections (8 different source ports, each closed before
    the next, so the entry also outlives the flows) all reach a, RR's first
    pick; client Y's first connection is RR's second pick, b, and stays there;
    X is still on a afterwards. Without affinity X's connections would
    alternate. A held connection of X does not change that."""
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    ports = port_range(1)
    daemon(selection_config(ports, fixed_members([a, b]), client_affinity="SOURCE_IP"))
    x, y = "127.0.0.2", "127.0.0.3"

    names, source_ports = _names_and_source_ports(ports[0], 8, x)
    assert names == ["a"] * 8 and len(source_ports) == 8
    names, _ = _names_and_source_ports(ports[0], 4, y)
    assert names == ["b"] * 4
    with tcp_connect(ports[0], source=x) as held:
        assert recv_line(held).decode() == "a"
        assert names_of_connections(ports[0], 3, source=x) == ["a"] * 3
    assert names_of_connections(ports[0], 2, source=y) == ["b"] * 2


def test_client_affinity_none_tcp_connections_alternate(daemon, tcp_backend, port_range):
    """Control for the test above: ClientAffinity NONE, same pool: client X's
    connections alternate a, b, a, b (so the test above can fail)."""
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    ports = port_range(1)
    daemon(selection_config(ports, fixed_members([a, b]), client_affinity="NONE"))

    assert names_of_connections(ports[0], 8, source="127.0.0.2") == ["a", "b"] * 4
