#!/usr/bin/env python3
"""Hand-over time of a takeover with N established TCP connections and N live
UDP sessions (docs/architecture.md §16.6), and the longest pause any probed
flow saw across it.

Starts flowgated (the test harness's Daemon) in front of an echo TCP member
and an echo UDP member, opens N TCP connections and N UDP sessions (one echo
each), keeps 100 probe flows (50 TCP, 50 UDP) echoing back to back, then runs
`flowgated --takeover`. Reports the new process's go-to-done time and start-
to-complete time (its own log), the old process's pause/send split, the
probes' longest wait for an echo, and checks afterwards that every TCP
connection still echoes and every UDP session still reaches the member from
the same upstream source port (the session moved; it was not re-created).

Raises RLIMIT_NOFILE to 200000 for itself and the daemons where allowed
(CAP_SYS_RESOURCE), else to the hard limit: each daemon holds 2 descriptors
per connection and 1 per session, so a 20000 hard limit allows about 6000 of
each. Bounded by --timeout.

    python3 bench/takeover/handover_time.py [--connections 10000] [--sessions 10000]
"""
from __future__ import annotations

import argparse
import resource
import selectors
import socket
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests/IntegrationTests"))
from harness import Daemon, config, free_port_range, listener, member, pool  # noqa: E402


class TcpEcho(threading.Thread):
    """Echo member for many connections: one epoll loop."""

    def __init__(self):
        super().__init__(daemon=True)
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4096)
        self.ls.setblocking(False)
        self.port = self.ls.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.ls, selectors.EVENT_READ)
        self.stop = False

    def run(self):
        while not self.stop:
            for key, _ in self.sel.select(0.2):
                s = key.fileobj
                if s is self.ls:
                    while True:
                        try:
                            c, _ = self.ls.accept()
                        except BlockingIOError:
                            break
                        c.setblocking(False)
                        self.sel.register(c, selectors.EVENT_READ)
                    continue
                try:
                    data = s.recv(65536)
                except (BlockingIOError, ConnectionError):
                    data = b""
                if data:
                    s.sendall(data)
                else:
                    self.sel.unregister(s)
                    s.close()


class UdpEcho(threading.Thread):
    """Echo member that remembers the source port each client index came from."""

    def __init__(self):
        super().__init__(daemon=True)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(0.2)
        self.port = self.s.getsockname()[1]
        self.source: dict[bytes, int] = {}
        self.moved: list[bytes] = []
        self.stop = False

    def run(self):
        while not self.stop:
            try:
                data, addr = self.s.recvfrom(2048)
            except socket.timeout:
                continue
            key = data.split(b" ")[0]
            prev = self.source.setdefault(key, addr[1])
            if prev != addr[1]:
                self.moved.append(key)
                self.source[key] = addr[1]
            self.s.sendto(data, addr)


class Probes(threading.Thread):
    """TCP and UDP flows echoing back to back; the longest wait per flow."""

    def __init__(self, tcp_port: int, udp_port: int, n: int = 50):
        super().__init__(daemon=True)
        self.tcp = [socket.create_connection(("127.0.0.1", tcp_port), timeout=20) for _ in range(n)]
        self.udp = []
        for i in range(n):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(1)
            u.connect(("127.0.0.1", udp_port))
            self.udp.append(u)
        self.longest = 0.0
        self.lost = 0
        self.errors: list[str] = []
        self.stop = False

    def run(self):
        seq = 0
        while not self.stop:
            for i, s in enumerate(self.tcp):
                t = time.monotonic()
                try:
                    s.sendall(b"p")
                    if s.recv(1) != b"p":
                        self.errors.append(f"tcp probe {i}: EOF")
                except OSError as e:
                    self.errors.append(f"tcp probe {i}: {e!r}")
                self.longest = max(self.longest, time.monotonic() - t)
            for i, u in enumerate(self.udp):
                seq += 1
                msg = f"probe{i} {seq}".encode()
                t = time.monotonic()
                u.send(msg)
                try:
                    while u.recv(2048) != msg:
                        pass
                except socket.timeout:
                    self.lost += 1
                self.longest = max(self.longest, time.monotonic() - t)


def log_value(line: str, key: str) -> str:
    return line.split(f"{key}=")[1].split()[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--flowgated", default=str(REPO / ".build/debug/flowgated"))
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    # As high as allowed: 200000 with CAP_SYS_RESOURCE, else the hard limit
    # (20000 here), which bounds N to about (limit - 1000) / 3 per daemon.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200_000, 200_000))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print(f"descriptor limit {resource.getrlimit(resource.RLIMIT_NOFILE)}")
    deadline = time.monotonic() + args.timeout
    tcp_m, udp_m = TcpEcho(), UdpEcho()
    tcp_m.start()
    udp_m.start()
    (port,) = free_port_range(1)
    p_tcp, p_udp = pool([member(tcp_m.port)]), pool([member(udp_m.port)], protocol="UDP")
    cfg = config([listener([port], p_tcp["id"]), listener([port], p_udp["id"], protocol="UDP")], [p_tcp, p_udp],
                 workers=args.workers, tuning={"drain_timeout": 30})
    old = Daemon(cfg, binary=args.flowgated).start()
    new = None
    try:
        t0 = time.monotonic()
        conns = []
        for i in range(args.connections):
            c = socket.create_connection(("127.0.0.1", port), timeout=20)
            c.sendall(b"x")
            assert c.recv(1) == b"x"
            conns.append(c)
            assert time.monotonic() < deadline, "timeout opening connections"
        sessions = []
        for i in range(args.sessions):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.settimeout(5)
            u.bind((f"127.0.{1 + i // 60000}.{2 + (i // 250) % 250}", 0))
            u.connect(("127.0.0.1", port))
            u.send(f"s{i} 0".encode())
            assert u.recv(2048) == f"s{i} 0".encode()
            sessions.append(u)
        print(f"opened {len(conns)} TCP connections and {len(sessions)} UDP sessions in {time.monotonic() - t0:.1f} s")
        probes = Probes(port, port)
        probes.start()
        time.sleep(1)
        baseline = probes.longest
        probes.longest = 0.0
        started = time.monotonic()
        new = Daemon(cfg, binary=args.flowgated, args=["--takeover"], control_socket=old.control_socket,
                     state_file=old.state_file, ready_timeout=120).start()
        ready = time.monotonic() - started
        time.sleep(1)
        probes.stop = True
        probes.join(10)
        complete = new.log_lines("takeover_complete")[0]
        sent = old.log_lines("takeover_connections_sent")[0]
        adopted = new.log_lines("takeover_connections_adopted")[0]
        # Every connection and session still works, through the new process.
        bad_tcp = 0
        for c in conns:
            c.sendall(b"y")
            if c.recv(1) != b"y":
                bad_tcp += 1
        lost_udp = 0
        for i, u in enumerate(sessions):
            u.send(f"s{i} 1".encode())
            try:
                u.recv(2048)
            except socket.timeout:
                lost_udp += 1
        moved = sum(1 for k in udp_m.moved if k.startswith(b"s"))
        old_exit = old.wait_exit(timeout=60)
        print(f"takeover: new process start -> READY {ready * 1000:.0f} ms; {complete.split('event=')[1]}")
        print(f"old process: {sent.split('event=')[1]}")
        print(f"new process: {adopted.split('event=')[1]}")
        print(f"probes (50 TCP + 50 UDP echoing back to back): longest echo wait {probes.longest * 1000:.1f} ms "
              f"(before the takeover {baseline * 1000:.1f} ms), UDP probe datagrams lost {probes.lost}, "
              f"errors {probes.errors[:3]}")
        print(f"after: TCP connections not echoing {bad_tcp}/{len(conns)}, UDP sessions unanswered "
              f"{lost_udp}/{len(sessions)}, UDP sessions reaching the member from a new source port {moved}; "
              f"old process exit {old_exit}")
        for c in conns:
            c.close()
        for u in sessions:
            u.close()
    finally:
        for d in (new, old):
            if d is not None:
                d.stop()
        tcp_m.stop = udp_m.stop = True


if __name__ == "__main__":
    main()
