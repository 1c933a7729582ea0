"""System calls per proxied TCP connection (issue 16), counted with
`strace -c` on the running daemon: the calls the connection path saved must
stay saved, and a refused member must still be retried without them."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import member, refused_port, single_pool_config, tcp_exchange

CONNECTIONS = 40


def traced_calls(pid: int, out: Path, work) -> dict[str, int]:
    """Runs `work` while strace counts the daemon's system calls (all its
    threads); returns calls per name."""
    proc = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # strace names the process once attached ("attached with N threads"), or
    # exits with its reason.
    attached = False
    while not attached:
        line = proc.stderr.readline()
        if not line:
            break
        attached = "attached" in line
    if not attached:
        proc.wait()
        pytest.fail("strace could not attach to the daemon (ptrace not permitted?): these counts cannot be checked")
    time.sleep(0.3)
    try:
        work()
    finally:
        proc.send_signal(2)   # SIGINT: strace detaches and writes its summary
        proc.wait(20)
    calls: dict[str, int] = {}
    for line in out.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if m and m.group(2) != "total":
            calls[m.group(2)] = int(m.group(1))
    return calls


# strace is installed by .ci/setup.sh; a missing one is a broken setup, not a reason to skip.


def test_a_connection_costs_no_so_error_read_and_at_most_four_epoll_ctl(daemon, tcp_backend, port_range, tmp_path):
    backend = tcp_backend("echo", mode="echo")
    (port,) = port_range(1)
    d = daemon(single_pool_config([port], [member(backend.port)]))

    def work():
        for i in range(CONNECTIONS):
            msg = f"hello {i}".encode()
            assert tcp_exchange(port, msg) == msg

    calls = traced_calls(d.pid, tmp_path / "strace.txt", work)
    assert calls.get("connect", 0) >= CONNECTIONS, calls
    # The connect result comes from the readiness itself (TCPConnection.connectFinished).
    assert calls.get("getsockopt", 0) == 0, calls
    # One edge-triggered registration per socket for the connection's life
    # (TCPConnection.watch): backend add (at the connect) and delete, client
    # add and delete. It was 5 with a MOD when the connect's interest gave way
    # to the relay's, and 6 before that.
    assert calls.get("epoll_ctl", 0) <= 4 * CONNECTIONS, calls


def test_a_refused_member_is_still_retried_without_a_client_noticing(daemon, tcp_backend, port_range, tmp_path):
    good = tcp_backend("good", mode="echo")
    (port,) = port_range(1)
    # round robin over a refused member and a good one: every other flow first
    # meets the refusal, which must show as an error, not as a connect.
    d = daemon(single_pool_config([port], [member(refused_port()), member(good.port)]))

    def work():
        for i in range(CONNECTIONS):
            msg = f"retry {i}".encode()
            assert tcp_exchange(port, msg) == msg

    calls = traced_calls(d.pid, tmp_path / "strace.txt", work)
    assert good.accepted == CONNECTIONS
    assert not d.log_lines("flow_rejected")
    # A refusal is read with SO_ERROR (the readiness alone is ambiguous then).
    assert 0 < calls.get("getsockopt", 0) <= CONNECTIONS, calls


def test_a_fin_that_came_with_the_last_data_costs_no_extra_recv(daemon, tcp_backend, port_range, tmp_path):
    # The member answers the client's EOF with a digest and its own FIN at
    # once: when the daemon's wakeup already reports that FIN (EPOLLRDHUP),
    # the short read of the digest is the last one (TCPChannel.relay). Every
    # direction used to cost a data recv plus a recv returning 0: 4 per flow.
    backend = tcp_backend("digest", mode="digest")
    (port,) = port_range(1)
    d = daemon(single_pool_config([port], [member(backend.port)]))

    def work():
        for i in range(CONNECTIONS):
            reply = tcp_exchange(port, f"data {i}".encode())
            assert reply.startswith(b"%d " % len(f"data {i}")), reply

    calls = traced_calls(d.pid, tmp_path / "strace.txt", work)
    assert calls.get("recvfrom", 0) < 4 * CONNECTIONS, calls
    # Half-close still passed on: the member saw each client's EOF.
    assert backend.wait_closed(CONNECTIONS)
    assert all(c.eof for c in backend.connections)
