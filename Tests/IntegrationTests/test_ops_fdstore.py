"""The systemd file-descriptor-store path of a takeover (docs/architecture.md
§16.8), with this test playing systemd's part as systemd does it: a
NOTIFY_SOCKET that takes FDSTORE=1 messages with their descriptors (and
FDSTOREREMOVE=1), then the next process started with LISTEN_FDS,
LISTEN_FDNAMES and LISTEN_PID, the descriptors from 3 on. Long-lived
connections keep every byte, no new connection is refused, a SOURCE_IP
client keeps its member, and the store ends empty."""
from __future__ import annotations

import array
import fcntl
import os
import socket
import subprocess
import threading
import time

import pytest

from harness import Daemon, config, listener, member, pool, recv_line, tcp_connect
from test_ops_handover import EchoFleet
from test_ops_takeover import ConnectLoop


class FakeSystemd:
    """The manager's side of sd_notify: messages, and the descriptor store
    keyed by FDNAME (FDSTORE=1 adds, FDSTOREREMOVE=1 closes and removes)."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.store: list[tuple[str, int]] = []
        self.removed: list[str] = []
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fd_size = array.array("i").itemsize
        while not self._stop:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(253 * fd_size))
            except socket.timeout:
                continue
            fds = []
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(payload[:len(payload) - len(payload) % fd_size])
                    fds.extend(a)
            text = data.decode()
            fields = dict(line.split("=", 1) for line in text.split("\n") if "=" in line)
            with self._lock:
                self.messages.append(text)
                if fields.get("FDSTORE") == "1":
                    for fd in fds:
                        self.store.append((fields.get("FDNAME", "stored"), fd))
                    continue
                for fd in fds:
                    os.close(fd)
                if fields.get("FDSTOREREMOVE") == "1":
                    name = fields.get("FDNAME")
                    self.removed.append(name)
                    for n, fd in [e for e in self.store if e[0] == name]:
                        os.close(fd)
                    self.store = [e for e in self.store if e[0] != name]

    def wait(self, text: str, after: int = 0, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if any(text in m for m in self.messages[after:]):
                    return True
            time.sleep(0.05)
        return False

    def start_next(self, binary: str, config_path: str, log_path: str) -> subprocess.Popen:
        """Starts the next process as systemd does after a restart: the stored
        descriptors at 3.., LISTEN_FDS/LISTEN_FDNAMES, LISTEN_PID its own pid."""
        with self._lock:
            stored = list(self.store)
        n = len(stored)

        def place() -> None:
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 3 + n + 64) for _, fd in stored]
            for i, h in enumerate(high):
                os.dup2(h, 3 + i)
            for h in high:
                os.close(h)

        env = dict(os.environ, NOTIFY_SOCKET=self.path, LISTEN_FDS=str(n),
                   LISTEN_FDNAMES=":".join(name for name, _ in stored), FLOWGATE_FDSTORE="1")
        # LISTEN_PID must be the service's own pid: the shell execs flowgated in place.
        # No pass_fds: the child marks those inheritable before preexec_fn runs,
        # so a number not yet open in this process failed with EBADF. dup2 in
        # `place` makes 3.. inheritable; this process's other descriptors are
        # close-on-exec (Python's default), so close_fds=False leaks nothing.
        return subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', binary, "--config", config_path],
                                env=env, preexec_fn=place, close_fds=False,
                                stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        for _, fd in self.store:
            os.close(fd)
        self.store = []
        self.sock.close()


@pytest.mark.timeout(120)
def test_fdstore_restart_keeps_listeners_connections_sessions_and_state(tcp_backend, udp_backend, port_range,
                                                                          flowgated_bin, tmp_path):
    echo = tcp_backend("echo", mode="echo")
    ids = [tcp_backend(f"m{i}", mode="id") for i in range(3)]
    uecho = udp_backend("uecho", mode="echo")
    ports = port_range(2)
    (sticky_port,) = port_range(1)
    (udp_port,) = port_range(1)
    p_echo = pool([member(echo.port)])
    p_sticky = pool([member(b.port) for b in ids], session_persistence={"type": "SOURCE_IP", "persistence_timeout": 10})
    p_udp = pool([member(uecho.port)], protocol="UDP")
    cfg = config([listener(ports, p_echo["id"]), listener([sticky_port], p_sticky["id"]),
                  listener([udp_port], p_udp["id"], protocol="UDP")], [p_echo, p_sticky, p_udp], workers=2)
    first = Daemon(cfg, env={"FLOWGATE_FDSTORE": "1"})
    # This test is the manager: it owns the daemon's NOTIFY_SOCKET.
    systemd = FakeSystemd(first.notify_path)
    first.notify = systemd
    first.start(wait_ready=False)
    nxt = None
    try:
        assert systemd.wait("READY=1"), first.stderr_text()[-3000:]
        with tcp_connect(sticky_port, source="127.0.0.99") as s:   # offset the round robin (see test_ops_handover)
            recv_line(s)
        sticky = {}
        for src in [f"127.0.0.{i}" for i in range(2, 8)]:
            with tcp_connect(sticky_port, source=src) as s:
                sticky[src] = recv_line(s).decode()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.settimeout(2)
        u.connect(("127.0.0.1", udp_port))
        u.send(b"before")
        assert u.recv(64) == b"before"
        with ConnectLoop(ports) as loop, EchoFleet(ports, 50) as fleet:
            time.sleep(0.5)
            mark = len(systemd.messages)
            first.signal(15)
            assert first.wait_exit(timeout=30) == 0, first.stderr_text()[-3000:]
            stored = first.log_lines("fdstore_stored")
            assert stored and "connections=5" in stored[0], first.stderr_text()[-3000:]   # 50 + the loop's
            names = [n for n, _ in systemd.store]
            assert "fgmanifest" in names and "fgstate" in names and any(n.startswith("fgl") for n in names)
            nxt = systemd.start_next(str(flowgated_bin), str(first.config_path), str(tmp_path / "next.log"))
            assert systemd.wait("READY=1", after=mark), (tmp_path / "next.log").read_text()[-3000:]
            time.sleep(1.5)
        log = (tmp_path / "next.log").read_text()
        print([l for l in log.splitlines() if "fdstore" in l or "takeover_state" in l])
        assert "event=fdstore_restored" in log, log[-3000:]
        assert loop.refused == 0, loop.refused
        assert loop.other == [], loop.other[:5]
        assert fleet.errors == [] and fleet.mismatched() == []
        # The UDP session kept its upstream socket: the member saw one source port.
        u.send(b"after")
        assert u.recv(64) == b"after"
        assert len({src for src in uecho.sources}) == 1, uecho.sources
        for src, name in sticky.items():
            with tcp_connect(sticky_port, source=src) as s:
                assert recv_line(s).decode() == name, src
        # Everything adopted was removed from the store: systemd holds nothing.
        assert systemd.store == [], [n for n, _ in systemd.store][:10]
        u.close()
    finally:
        if nxt is not None and nxt.poll() is None:
            nxt.terminate()
            try:
                nxt.wait(20)
            except subprocess.TimeoutExpired:
                nxt.kill()
        first.stop()
        systemd.close()
