"""Black-box tests of the pool algorithms (issue 4, docs/architecture.md §3.4) through
the spawned flowgated with real loopback connections.

Members are TcpBackend(mode="id"): a new connection first reads the name of the
member the daemon picked. Connections are made one after another and each
waits for that name, so the daemon's picks happen in the test's order and the
expected members are exact wherever the algorithm is deterministic.
"""
from __future__ import annotations

import time

from harness.selection import (HeldConnections, expected_source_ip_member, fixed_members, maglev_table,
                               names_of_connections, selection_config, siphash24, smooth_wrr, source_addresses,
                               tally)


def test_round_robin_weights_3_to_1_over_400_connections(daemon, tcp_backend, port_range):
    """Smooth weighted round robin, weights 3:1: 300/100 of 400 (±5% as the
    issue asks), and, since the RR scores are shared by every worker and the
    connections are sequential, exactly nginx's sequence (a a b a, repeated:
    no member gets two of the light member's turns in a row)."""
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    ports = port_range(1)
    daemon(selection_config(ports, fixed_members([a, b], weights=[3, 1])))

    names = names_of_connections(ports[0], 400)

    counts = tally(names)
    assert abs(counts.get("a", 0) - 300) <= 15, counts
    assert abs(counts.get("b", 0) - 100) <= 5, counts
    assert names == smooth_wrr({"a": 3, "b": 1}, 400)
    assert a.accepted == counts["a"] and b.accepted == counts["b"]


def test_least_connections_sends_new_flows_to_the_member_without_held_flows(daemon, tcp_backend, port_range):
    """LEAST_CONNECTIONS, weights 1:1. The scenario, airtight:

    1. B starts at weight 0 (drained: eligible for nothing), so the first 10
       connections, held open, all go to A: A has 10 active flows, B none.
    2. The config is rewritten with B at weight 1 and applied with SIGHUP
       (member ids are explicit and unchanged, so the daemon keeps A's live
       count of 10 across the swap; no slow start).
    3. The next 10 connections, also held, see loads (10+1)/1 on A against
       (k+1)/1 on B with k = 0..9 < 10: every one goes to B.
    4. Now both hold 10: the next two are a tie each time, broken round robin,
       so they go one to each member.

    A daemon that counted per worker, forgot counts at reload, or ignored
    them (plain round robin) would send about half of step 3 to A."""
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    ports = port_range(1)
    d = daemon(selection_config(ports, fixed_members([a, b], weights=[1, 0]), lb_algorithm="LEAST_CONNECTIONS"))

    with HeldConnections() as held:
        assert held.open_many(ports[0], 10) == ["a"] * 10

        d.write_config(selection_config(ports, fixed_members([a, b], weights=[1, 1]),
                                        lb_algorithm="LEAST_CONNECTIONS"))
        d.sighup(wait=True)

        assert held.open_many(ports[0], 10) == ["b"] * 10
        assert sorted(held.open_many(ports[0], 2)) == ["a", "b"]
        assert a.accepted == 11 and b.accepted == 11


def test_least_connections_counts_closed_flows_out(daemon, tcp_backend, port_range):
    """LEAST_CONNECTIONS, weights 1:1, one config throughout:

    1. 20 held connections: each odd one leaves the members 1 apart and the
       next must even them, so every pair holds one of each: 10 on A, 10 on B.
    2. The 10 on B are closed (orderly FIN); once B's backend has seen them
       all end (the daemon releases a flow when it closes both sides), B has
       0 active flows and A 10.
    3. The next 10 held connections all go to B (load k+1 < 11), and the
       one after that is a tie broken round robin, so the 11th and 12th go
       one to each member."""
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    ports = port_range(1)
    daemon(selection_config(ports, fixed_members([a, b]), lb_algorithm="LEAST_CONNECTIONS"))

    with HeldConnections() as held:
        first = held.open_many(ports[0], 20)
        for i in range(0, 20, 2):
            assert sorted(first[i:i + 2]) == ["a", "b"], first
        assert held.close_where("b") == 10
        assert b.wait_closed(10, timeout=10), "the daemon did not close B's 10 connections"
        # The release follows the close of the daemon's upstream socket within
        # the same callback; give that callback time to finish.
        time.sleep(0.5)

        assert held.open_many(ports[0], 10) == ["b"] * 10
        assert sorted(held.open_many(ports[0], 2)) == ["a", "b"]


def _source_ip_choices(port: int, clients: list[str], connections_each: int) -> dict[str, str]:
    """client IP -> the one member all its connections reached (asserts there
    is exactly one per client)."""
    choices: dict[str, str] = {}
    for ip in clients:
        names = set(names_of_connections(port, connections_each, source=ip))
        assert len(names) == 1, f"client {ip} reached {sorted(names)}"
        choices[ip] = names.pop()
    return choices


def test_source_ip_is_stable_per_client_and_identical_across_daemons(daemon, tcp_backend, port_range):
    """SOURCE_IP (Maglev over the client IP). 20 client IPs 127.0.0.2..21, 5
    connections each: every client always reaches one member, the clients
    spread over all three members, and a second daemon started on the same
    config (same ids and members, only its listening port differs) maps every
    client IP to the same member, even when the clients come in reverse order
    (the choice depends on the key, not on history). The spread is fixed by
    the hash (not random), so it cannot flake.

    Each client's member is also exactly the one an independent model of the
    documented algorithm gives (harness/selection.py: SipHash-2-4 with the
    documented keys, Maglev over the members' "address:port" names)."""
    backends = [tcp_backend(n, mode="id") for n in ("a", "b", "c")]
    members = fixed_members(backends)
    first_port, second_port = port_range(1), port_range(1)
    daemon(selection_config(first_port, members, lb_algorithm="SOURCE_IP"))
    daemon(selection_config(second_port, members, lb_algorithm="SOURCE_IP"))
    clients = source_addresses(20)

    first = _source_ip_choices(first_port[0], clients, 5)
    second = _source_ip_choices(second_port[0], list(reversed(clients)), 5)

    assert set(first.values()) == {"a", "b", "c"}, first
    assert second == first
    table = maglev_table([f"127.0.0.1:{b.port}" for b in backends])
    assert first == {ip: backends[expected_source_ip_member(table, ip)].name for ip in clients}
    # Round robin would have alternated each client's 5 connections.
    assert sum(b.accepted for b in backends) == 200


def test_siphash_model_matches_the_reference_vectors():
    """The model used for exact SOURCE_IP expectations is SipHash-2-4 itself:
    the reference implementation's vectors (key 00..0f, message 00..n-1)."""
    k0 = int.from_bytes(bytes(range(8)), "little")
    k1 = int.from_bytes(bytes(range(8, 16)), "little")
    assert siphash24(b"", k0, k1) == 0x726FDB47DD0E0E31
    assert siphash24(bytes(range(8)), k0, k1) == 0x93F5F5799A932462
    assert siphash24(bytes(range(15)), k0, k1) == 0xA129CA6149BE45E5
