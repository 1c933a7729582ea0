"""Free port ranges for listener port ranges, which cannot use port 0.

A range is chosen outside the kernel's ephemeral range (so an outgoing
connection cannot take one of its ports between the check and the daemon's
bind), checked bindable for every asked protocol, and reserved:
- in this process (a set), so two tests never get the same port;
- across processes (one lock file per port under /tmp, holding the owner's pid),
  because several checkouts may run their suites on one machine at once.
Reservations end at release_ports() or at process exit.
"""
from __future__ import annotations

import atexit
import os
import random
import socket
import threading
from typing import Iterable, Sequence

LOCK_DIR = "/tmp/flowgate-test-ports"
# Below this, ports are likely to belong to real services (and to the example
# config's 8000-8009 / 9001-9002 / 9900), so tests stay above it.
LOWEST_PORT = 10000

_lock = threading.Lock()
_reserved: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux default


def _normalize(proto: str | Sequence[str]) -> tuple[str, ...]:
    protos = (proto,) if isinstance(proto, str) else tuple(proto)
    for p in protos:
        if p not in ("tcp", "udp"):
            raise ValueError(f"proto must be 'tcp' or 'udp', not {p!r}")
    return protos


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_is_free(port: int, proto: str | Sequence[str] = ("tcp", "udp"), host: str = "127.0.0.1") -> bool:
    """True when `port` can be bound now on `host` for every protocol.

    TCP is tried with SO_REUSEADDR, as a server binds: that still fails when
    something listens there, but not for connections lingering in TIME_WAIT.
    """
    for p in _normalize(proto):
        kind = socket.SOCK_STREAM if p == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(_family(host), kind)
        try:
            if p == "tcp":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _claim_file(port: int) -> bool:
    os.makedirs(LOCK_DIR, mode=0o777, exist_ok=True)
    path = os.path.join(LOCK_DIR, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read().strip() or "0")
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _pid_alive(owner):
                return False
            if owner == os.getpid():
                return False  # ours already (reserved set is the authority)
            try:
                os.unlink(path)  # stale: its owner is gone
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def _unclaim_file(port: int) -> None:
    path = os.path.join(LOCK_DIR, str(port))
    try:
        with open(path) as f:
            if f.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except (OSError, ValueError):
        pass


def release_ports(ports: Iterable[int]) -> None:
    with _lock:
        for port in ports:
            if port in _reserved:
                _reserved.discard(port)
                _unclaim_file(port)


@atexit.register
def _release_all() -> None:
    release_ports(list(_reserved))


def _candidate_windows(n: int) -> list[tuple[int, int]]:
    """Inclusive start bounds of windows of n ports outside the ephemeral range."""
    eph_low, eph_high = ephemeral_range()
    windows = []
    if eph_low - n >= LOWEST_PORT:
        windows.append((LOWEST_PORT, eph_low - n))
    if 65535 - n + 1 > eph_high:
        windows.append((max(eph_high + 1, LOWEST_PORT), 65535 - n + 1))
    if not windows:
        raise RuntimeError(f"no room for {n} consecutive ports outside the ephemeral range {eph_low}-{eph_high}")
    return windows


def free_port_range(n: int = 1, proto: str | Sequence[str] = ("tcp", "udp"),
                    host: str = "127.0.0.1", attempts: int = 500) -> list[int]:
    """n consecutive ports, bindable now on `host` for every protocol in
    `proto`, reserved for this process. Returns the ports in order."""
    if n < 1:
        raise ValueError("n must be >= 1")
    protos = _normalize(proto)
    windows = _candidate_windows(n)
    weights = [hi - lo + 1 for lo, hi in windows]
    rng = random.Random()
    for _ in range(attempts):
        lo, hi = rng.choices(windows, weights=weights)[0]
        start = rng.randint(lo, hi)
        ports = list(range(start, start + n))
        with _lock:
            if any(p in _reserved for p in ports):
                continue
            claimed = []
            ok = True
            for p in ports:
                if _claim_file(p):
                    claimed.append(p)
                else:
                    ok = False
                    break
            if ok and all(port_is_free(p, protos, host) for p in ports):
                _reserved.update(ports)
                return ports
            for p in claimed:
                _unclaim_file(p)
    raise RuntimeError(f"found no {n} consecutive free ports for {protos} on {host} in {attempts} attempts")


def free_port(proto: str | Sequence[str] = ("tcp", "udp"), host: str = "127.0.0.1") -> int:
    return free_port_range(1, proto, host)[0]


def refused_port(host: str = "127.0.0.1") -> int:
    """A reserved TCP+UDP port with nothing bound: connecting is refused (RST),
    and a datagram sent there draws ICMP port unreachable. Outside the
    ephemeral range, so a client socket cannot self-connect through it."""
    return free_port_range(1, ("tcp", "udp"), host)[0]


def wait_port_state(port: int, listening: bool, host: str = "127.0.0.1", timeout: float = 10.0) -> bool:
    """Poll until a TCP connect to host:port succeeds (listening=True) or is
    refused (listening=False). Note that a successful probe is a real
    connection the server sees (and a proxy forwards)."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(_family(host), socket.SOCK_STREAM)
        s.settimeout(1.0)
        try:
            s.connect((host, port))
            up = True
        except OSError:
            up = False
        finally:
            s.close()
        if up == listening:
            return True
        time.sleep(0.05)
    return False


def tcp_listening_ports() -> set[int]:
    """Local TCP ports in LISTEN state (from /proc/net/tcp and tcp6), without
    connecting (a probe connection would count as a flow)."""
    ports: set[int] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":  # TCP_LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def udp_bound_ports() -> set[int]:
    ports: set[int] = set()
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    ports.add(int(line.split()[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports
