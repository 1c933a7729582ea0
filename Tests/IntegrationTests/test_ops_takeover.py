"""Takeover (issue 15, stage 1): `flowgated --takeover` receives every
listening socket of the running daemon over SCM_RIGHTS, starts on them, and
only then tells the old one to drain and exit 0 (docs/architecture.md §16).
No connection is refused across a takeover; a new process that fails before
go leaves the old one serving everything."""
from __future__ import annotations

import errno
import socket
import threading
import time

import pytest

from harness import config, listener, member, pool

# Port range per listener: every port is handed over, not only the first.
PORTS = 4


class ConnectLoop:
    """Opens TCP connections to `ports` in turn as fast as it can, each
    exchanging one echoed line, and counts what failed and how."""

    def __init__(self, ports: list[int]):
        self.ports = ports
        self.ok = 0
        self.refused = 0
        self.other: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            port = self.ports[i % len(self.ports)]
            i += 1
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.sendall(b"ping\n")
                    got = b""
                    while not got.endswith(b"\n"):
                        chunk = s.recv(64)
                        if not chunk:
                            break
                        got += chunk
                    if got == b"ping\n":
                        self.ok += 1
                    else:
                        self.other.append(f"port {port}: echo {got!r}")
            except ConnectionRefusedError:
                self.refused += 1
            except OSError as e:
                self.other.append(f"port {port}: {e!r}")

    def __enter__(self) -> "ConnectLoop":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def tcp_setup(tcp_backend, port_range, udp: bool = False, udp_backend=None, workers: int = 2):
    ports = port_range(PORTS)
    b = tcp_backend("echo", mode="echo")
    p = pool([member(b.port)])
    listeners = [listener(ports, p["id"])]
    pools = [p]
    udp_ports: list[int] = []
    if udp:
        udp_ports = port_range(2)
        u = udp_backend("uecho", mode="echo")
        up = pool([member(u.port)], protocol="UDP")
        listeners.append(listener(udp_ports, up["id"], protocol="UDP"))
        pools.append(up)
    return config(listeners, pools, workers=workers), ports, udp_ports


def take_over(daemon, old, cfg, **kwargs):
    """Starts a fresh process with --takeover on the old one's control socket
    and state file; returns it (READY=1 received) and the start time."""
    started = time.monotonic()
    new = daemon(cfg, args=["--takeover"], control_socket=old.control_socket, state_file=old.state_file, **kwargs)
    return new, started


@pytest.mark.timeout(120)
def test_three_takeovers_refuse_no_connection_and_old_exits_0(daemon, tcp_backend, port_range):
    cfg, ports, _ = tcp_setup(tcp_backend, port_range)
    current = daemon(cfg)
    timings = []
    with ConnectLoop(ports) as loop:
        time.sleep(0.5)
        for _ in range(3):
            before = loop.ok
            new, started = take_over(daemon, current, cfg)
            assert current.wait_exit(timeout=20) == 0, current.stderr_text()[-3000:]
            timings.append(time.monotonic() - started)
            assert new.log_lines("takeover_complete"), new.stderr_text()[-3000:]
            assert current.log_lines("takeover_handed_over"), current.stderr_text()[-3000:]
            # The new process bound none of the handed ports.
            assert not new.log_lines("listener_bound"), new.stderr_text()[-3000:]
            current = new
            time.sleep(0.5)
            assert loop.ok > before, "the loop made no progress across a takeover"
        time.sleep(0.5)
    print(f"takeover: {loop.ok} connections, {loop.refused} refused, other {loop.other[:5]}, "
          f"new start -> old exit {[round(t, 3) for t in timings]} s")
    assert loop.refused == 0
    assert loop.other == []
    assert loop.ok > 100
    # The last process still serves, holds the lock and the control socket.
    status, _, _ = current.request("GET", "/metrics")
    assert status == 200
    third = daemon(cfg, wait_ready=False, control_socket=current.control_socket, state_file=current.state_file)
    assert third.wait_exit(timeout=20) == 1
    assert third.log_lines("already_running")
    status, _, _ = current.request("GET", "/metrics")
    assert status == 200


@pytest.mark.timeout(60)
def test_stop_and_start_refuses_connections_for_comparison(daemon, tcp_backend, port_range):
    """What takeover avoids: SIGTERM then a fresh start (systemctl restart)."""
    cfg, ports, _ = tcp_setup(tcp_backend, port_range)
    d = daemon(cfg)
    with ConnectLoop(ports) as loop:
        time.sleep(0.5)
        started = time.monotonic()
        assert d.terminate() == 0
        d.start()
        elapsed = time.monotonic() - started
        time.sleep(0.5)
    print(f"stop+start: {loop.ok} connections, {loop.refused} refused, stop -> ready {elapsed:.3f} s")
    assert loop.refused > 0


@pytest.mark.timeout(60)
def test_udp_client_keeps_getting_answers_across_a_takeover(daemon, tcp_backend, udp_backend, port_range):
    cfg, _, udp_ports = tcp_setup(tcp_backend, port_range, udp=True, udp_backend=udp_backend)
    old = daemon(cfg)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    lost: list[int] = []
    answered = 0
    result: dict = {}

    def takeover() -> None:
        time.sleep(0.5)
        result["new"], _ = take_over(daemon, old, cfg)

    t = threading.Thread(target=takeover)
    t.start()
    deadline = time.monotonic() + 4
    i = 0
    while time.monotonic() < deadline or t.is_alive():
        # Odd datagrams come from a fresh source port: a new session, which
        # only a process still reading the listening socket could start.
        fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM) if i % 2 else None
        c = fresh or s
        c.settimeout(2)
        msg = f"dgram {i}".encode()
        c.sendto(msg, ("127.0.0.1", udp_ports[i % 2]))
        try:
            while True:
                got, _ = c.recvfrom(2048)
                if got == msg:
                    answered += 1
                    break
        except socket.timeout:
            lost.append(i)
        if fresh:
            fresh.close()
        i += 1
        time.sleep(0.01)
    t.join()
    # The old process no longer reads the listening sockets, so its sessions
    # go quiet (1 s) and it exits well before the 10 s drain deadline.
    gone = time.monotonic()
    assert old.wait_exit(timeout=20) == 0, old.stderr_text()[-3000:]
    assert time.monotonic() - gone < 5, old.stderr_text()[-3000:]
    # After the old one left, the new one answers alone.
    s.sendto(b"after", ("127.0.0.1", udp_ports[0]))
    assert s.recvfrom(2048)[0] == b"after"
    s.close()
    print(f"udp: {answered} answered, lost {lost}")
    assert lost == []
    assert result["new"].log_lines("takeover_complete")


@pytest.mark.timeout(60)
def test_long_lived_connection_is_served_by_the_old_process_until_it_ends(daemon, tcp_backend, port_range):
    """With connection hand-over turned off (a test hook), an established
    connection stays with the old process, which relays it until it ends."""
    cfg, ports, _ = tcp_setup(tcp_backend, port_range)
    old = daemon(cfg, env={"FLOWGATE_TEST_TAKEOVER_KEEP_TCP": "1"})
    c = socket.create_connection(("127.0.0.1", ports[1]), timeout=5)
    c.sendall(b"before\n")
    assert c.recv(64) == b"before\n"
    new, _ = take_over(daemon, old, cfg)
    # The old process drains: it is still running, relaying this connection.
    time.sleep(1)
    assert old.running, old.stderr_text()[-3000:]
    for k in range(5):
        line = f"during {k}\n".encode()
        c.sendall(line)
        assert c.recv(64) == line
        time.sleep(0.1)
    # New connections go to the new process meanwhile.
    with socket.create_connection(("127.0.0.1", ports[1]), timeout=5) as n:
        n.sendall(b"new\n")
        assert n.recv(64) == b"new\n"
    c.close()
    assert old.wait_exit(timeout=10) == 0, old.stderr_text()[-3000:]
    assert old.log_lines("drained"), old.stderr_text()[-3000:]
    # The old process left the new one's control socket in place.
    status, _, _ = new.request("GET", "/metrics")
    assert status == 200


@pytest.mark.timeout(120)
@pytest.mark.parametrize("failure", ["bad-config", "port-in-use", "kill-after-receive", "kill-before-go"])
def test_failed_takeover_leaves_the_old_process_serving(daemon, tcp_backend, port_range, failure):
    cfg, ports, _ = tcp_setup(tcp_backend, port_range)
    old = daemon(cfg)
    blocker = None
    env = {}
    bad = cfg
    if failure == "bad-config":
        bad = dict(cfg, workers=0)
    elif failure == "port-in-use":
        # A port the new config adds is taken by someone else: the new
        # process fails after it received the sockets.
        (extra,) = port_range(1)
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", extra))
        blocker.listen()
        bad = config([listener(ports, cfg["pools"][0]["id"]), listener([extra], cfg["pools"][0]["id"])], cfg["pools"],
                     workers=2)
    else:
        env = {"FLOWGATE_TEST_TAKEOVER_HOOK": failure}
    with ConnectLoop(ports) as loop:
        time.sleep(0.3)
        new = daemon(bad, wait_ready=False, args=["--takeover"], control_socket=old.control_socket,
                     state_file=old.state_file, env=env)
        code = new.wait_exit(timeout=20)
        assert code != 0
        time.sleep(0.5)
        before = loop.ok
        time.sleep(0.5)
        assert loop.ok > before
    if blocker:
        blocker.close()
    assert loop.refused == 0, (loop.refused, loop.other[:5])
    if failure == "kill-before-go":
        # The new process already forwarded: connections it had accepted die
        # with it (never refused), as with HAProxy's -x. The kernel resets
        # those whose request it had not read yet, and closes with a FIN
        # (the client reads EOF) those whose request it had already read:
        # the relay reads it as soon as the member answered
        # (docs/architecture.md §19), so both happen.
        assert all("ConnectionResetError" in o or "echo b''" in o for o in loop.other), loop.other[:5]
    else:
        assert loop.other == [], loop.other[:5]
    assert old.running
    if failure != "bad-config":
        assert old.log_lines("takeover_aborted"), old.stderr_text()[-3000:]
    # The old process rolled back fully: changes are accepted again and a
    # later takeover succeeds.
    status, _, body = old.request("GET", f"/v3/{cfg['project_id']}/elb/pools/{cfg['pools'][0]['id']}")
    assert status == 200, body
    status, _, body = old.request("PUT", f"/v3/{cfg['project_id']}/elb/pools/{cfg['pools'][0]['id']}",
                                  body={"pool": {"description": "after a failed takeover"}})
    assert status == 200, body
    good, _ = take_over(daemon, old, cfg)
    assert old.wait_exit(timeout=20) == 0
    assert good.log_lines("takeover_complete")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("workers", [1, 3])
def test_takeover_to_a_different_worker_count_refuses_nothing(daemon, tcp_backend, port_range, workers):
    """The old process has 2 sockets per port; the new one serves them with
    `workers` workers: one keeps one of them (the other closes in both
    processes), three add a socket per port to the SO_REUSEPORT group."""
    cfg, ports, _ = tcp_setup(tcp_backend, port_range, workers=2)
    old = daemon(cfg)
    with ConnectLoop(ports) as loop:
        time.sleep(0.5)
        new, _ = take_over(daemon, old, dict(cfg, workers=workers))
        assert old.wait_exit(timeout=20) == 0, old.stderr_text()[-3000:]
        time.sleep(1)
    print(f"workers 2 -> {workers}: {loop.ok} connections, {loop.refused} refused, other {loop.other[:5]}")
    assert loop.refused == 0 and loop.other == []
    assert new.log_lines("takeover_complete")
    widened = new.log_lines("listeners_widened")
    if workers == 3:
        # One socket per port, or with tuning.port_ranges lookup one per listener group (docs/architecture.md §20).
        lookup = any("mode=lookup" in l for l in new.log_lines("port_ranges"))
        assert widened and f"sockets={1 if lookup else PORTS}" in widened[0], new.stderr_text()[-3000:]
    else:
        assert not widened


@pytest.mark.timeout(60)
def test_fewer_workers_udp_datagrams_reach_the_new_process_while_the_old_drains(daemon, tcp_backend, udp_backend,
                                                                              port_range):
    """2 → 1 workers: the socket per port the new process did not keep is
    closed by both, so no datagram is queued where nobody reads, even while
    the old process still drains a TCP connection."""
    cfg, ports, udp_ports = tcp_setup(tcp_backend, port_range, udp=True, udp_backend=udp_backend, workers=2)
    old = daemon(cfg, env={"FLOWGATE_TEST_TAKEOVER_KEEP_TCP": "1"})
    held = socket.create_connection(("127.0.0.1", ports[0]), timeout=5)
    held.sendall(b"x\n")
    assert held.recv(8) == b"x\n"
    take_over(daemon, old, dict(cfg, workers=1))
    time.sleep(0.5)
    assert old.running
    lost = []
    for i in range(40):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(2)
            msg = f"fresh {i}".encode()
            c.sendto(msg, ("127.0.0.1", udp_ports[i % 2]))
            try:
                if c.recvfrom(2048)[0] != msg:
                    lost.append(i)
            except socket.timeout:
                lost.append(i)
    held.close()
    assert old.wait_exit(timeout=20) == 0
    assert lost == []


@pytest.mark.timeout(60)
def test_changes_are_refused_during_the_handshake_and_accepted_after_an_abort(daemon, tcp_backend, port_range):
    """The new process has read the state file once it holds the sockets: an
    update the old one acknowledged then would be lost, so it is refused."""
    cfg, ports, _ = tcp_setup(tcp_backend, port_range)
    old = daemon(cfg)
    url = f"/v3/{cfg['project_id']}/elb/pools/{cfg['pools'][0]['id']}"
    new = daemon(cfg, wait_ready=False, args=["--takeover"], control_socket=old.control_socket,
                 state_file=old.state_file, env={"FLOWGATE_TEST_TAKEOVER_HOOK": "pause-after-receive"})
    deadline = time.monotonic() + 10
    while not old.log_lines("takeover_offered") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert old.log_lines("takeover_offered"), old.stderr_text()[-3000:]
    status, _, body = old.request("PUT", url, body={"pool": {"description": "during"}})
    assert status == 503 and b"handing over" in body, (status, body)
    new.kill9()
    deadline = time.monotonic() + 10
    while not old.log_lines("takeover_aborted") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert old.log_lines("takeover_aborted"), old.stderr_text()[-3000:]
    status, _, body = old.request("PUT", url, body={"pool": {"description": "after"}})
    assert status == 200, body
    with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as c:
        c.sendall(b"ok\n")
        assert c.recv(8) == b"ok\n"
