"""The TCP relay watches each socket once, edge-triggered (issue 16,
docs/architecture.md §5): a readiness it does not act on at once is never
announced again, so these check the cases where the relay must remember or
re-read by itself."""
from __future__ import annotations

import pytest

from harness import member, single_pool_config, tcp_member_name, tcp_roundtrip


@pytest.mark.timeout(120)
@pytest.mark.parametrize("relay", ["copy", "splice", "adaptive"])
def test_a_fin_that_arrives_while_the_channel_is_blocked_is_passed_on(daemon, tcp_backend, port_range, relay):
    # The client sends 64 MiB and its FIN faster than the echo member takes
    # them: the FIN's wakeup comes while the upstream channel holds bytes the
    # member has not taken, so nothing is read then. The channel must remember
    # the FIN (TCPChannel.sourceClosed), or the last short read after the
    # flush leaves it unread and the member never sees the EOF.
    backend = tcp_backend("echo", mode="echo")
    (port,) = port_range(1)
    daemon(single_pool_config([port], [member(backend.port)]), env={"FLOWGATE_TCP_RELAY": relay})
    size = 64 << 20
    for _ in range(2):
        sent, received, count = tcp_roundtrip(port, size, timeout=45)
        assert count == size and received == sent
    assert backend.wait_closed(2)
    assert all(c.eof for c in backend.connections)


def test_a_member_that_speaks_first_is_relayed_on_every_connection(daemon, tcp_backend, port_range):
    # The member sends its name as soon as it accepts, so its bytes often
    # arrive with the wakeup that completes the connect; that read edge is
    # used up there and must be relayed then (TCPConnection.established).
    backend = tcp_backend("name", mode="id")
    (port,) = port_range(1)
    daemon(single_pool_config([port], [member(backend.port)], workers=2))
    names = [tcp_member_name(port, timeout=5.0) for _ in range(300)]
    assert names == ["name"] * 300
