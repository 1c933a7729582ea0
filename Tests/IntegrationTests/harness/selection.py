"""Helpers for the backend-selection black-box tests (issue 4, docs/architecture.md §3).

Configs here carry explicit, fixed ids (accelerator, listener, pool, members)
so two daemons started on "the same config" agree on every id, and a SIGHUP
rewrite of a config keeps the members' identities (and so their live
least-connection counts, which the daemon keys by pool id and member id).

Every selection is observed the same way: the members are TcpBackend /
UdpBackend in mode "id", which answer a new connection (or any datagram) with
their name, so a client learns which member the daemon picked.
"""
from __future__ import annotations

import socket
from collections import Counter
from contextlib import ExitStack
from typing import Any, Iterable, Sequence

from .clients import recv_line, tcp_connect, tcp_member_name
from .configs import config, listener, member, pool

ACCELERATOR = "arn:aws:globalaccelerator::123456789012:accelerator/5e1ec710-0000-4000-8000-000000000004"
LISTENER_SUFFIX = "5e1ec710"
POOL_ID = "5e1ec710-0000-4000-8000-0000000000aa"


def member_id(index: int) -> str:
    """Fixed member ids: ...-0000000000b0, ...-0000000000b1, ..."""
    return f"5e1ec710-0000-4000-8000-0000000000b{index:x}"


def fixed_members(backends: Sequence[Any], weights: Sequence[int] | None = None,
                  **extra: Any) -> list[dict[str, Any]]:
    """One member per backend (in order), ids member_id(0), member_id(1), ...,
    named like the backend."""
    weights = list(weights) if weights is not None else [1] * len(backends)
    assert len(weights) == len(backends)
    return [member(b.port, weight=w, name=b.name, id=member_id(i), **extra)
            for i, (b, w) in enumerate(zip(backends, weights))]


def selection_config(ports: Sequence[int], members: list[dict[str, Any]], *, protocol: str = "TCP",
                     lb_algorithm: str = "ROUND_ROBIN", client_affinity: str = "NONE",
                     workers: int | str | None = None, idle_timeout: int | None = None,
                     **pool_extra: Any) -> dict[str, Any]:
    """One listener (fixed ARN) over `ports` in front of one pool (fixed id).
    pool_extra: session_persistence, slow_start, ... as in docs/architecture.md §14."""
    p = pool(members, protocol=protocol, lb_algorithm=lb_algorithm, pool_id=POOL_ID, name="selection",
             **pool_extra)
    l = listener(ports, POOL_ID, protocol=protocol, accelerator=ACCELERATOR, client_affinity=client_affinity,
                 idle_timeout=idle_timeout, arn=f"{ACCELERATOR}/listener/{LISTENER_SUFFIX}")
    return config([l], [p], workers=workers, accelerator=ACCELERATOR)


def names_of_connections(port: int, count: int, source: str | None = None) -> list[str]:
    """`count` sequential connections, each closed before the next opens;
    the member name of each, in order. Sequential, so the picks happen in
    this order (the name arrives only after the daemon connected upstream)."""
    return [tcp_member_name(port, source=source) for _ in range(count)]


class HeldConnections:
    """TCP connections kept open (long-lived flows) until close()."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.sockets: list[socket.socket] = []
        self.names: list[str] = []

    def open(self, port: int, source: str | None = None) -> str:
        """Open one more; returns the member that serves it. Returns only
        once the member has answered, i.e. the pick is done and counted."""
        s = self._stack.enter_context(tcp_connect(port, source=source))
        name = recv_line(s).decode()
        assert name, "the proxied connection closed before the member answered"
        self.sockets.append(s)
        self.names.append(name)
        return name

    def open_many(self, port: int, count: int, source: str | None = None) -> list[str]:
        return [self.open(port, source) for _ in range(count)]

    def close_where(self, name: str) -> int:
        """Close (orderly FIN) every held connection served by `name`."""
        kept_s, kept_n, closed = [], [], 0
        for s, n in zip(self.sockets, self.names):
            if n == name:
                s.close()
                closed += 1
            else:
                kept_s.append(s); kept_n.append(n)
        self.sockets, self.names = kept_s, kept_n
        return closed

    def close(self) -> None:
        self._stack.close()
        self.sockets, self.names = [], []

    def __enter__(self) -> "HeldConnections":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def smooth_wrr(weights: dict[str, int], picks: int) -> list[str]:
    """The reference smooth weighted round robin (nginx's
    ngx_http_upstream_get_peer): every pick adds each weight to its member's
    score, the highest score wins (the first in order on a tie) and loses the
    total. Members in dict order = config order."""
    current = {name: 0 for name in weights}
    total = sum(weights.values())
    out = []
    for _ in range(picks):
        best = None
        for name, w in weights.items():
            current[name] += w
            if best is None or current[name] > current[best]:
                best = name
        current[best] -= total
        out.append(best)
    return out


def source_addresses(count: int, first: int = 2) -> list[str]:
    """127.0.0.<first> .. : distinct client IPs on loopback (all of 127/8 is
    local on Linux, so a client socket may bind any of them)."""
    assert first + count <= 255
    return [f"127.0.0.{i}" for i in range(first, first + count)]


def udp_member_names(port: int, source_ports: int, source: str = "127.0.0.1",
                     timeout: float = 2.0) -> list[str]:
    """One datagram from each of `source_ports` distinct client sockets (so
    distinct source ports, same source IP), all kept open until every answer
    is in: the member name that answered each, in order."""
    names: list[str] = []
    with ExitStack() as stack:
        socks = []
        for _ in range(source_ports):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            s.settimeout(timeout)
            s.bind((source, 0))
            socks.append(s)
        assert len({s.getsockname()[1] for s in socks}) == source_ports
        for i, s in enumerate(socks):
            reply = None
            for _ in range(3):   # loopback does not drop, but never hang on one loss
                s.sendto(f"flow {i}".encode(), ("127.0.0.1", port))
                try:
                    reply, _ = s.recvfrom(65535)
                    break
                except socket.timeout:
                    continue
            assert reply is not None, f"no reply to the datagram from source port {s.getsockname()[1]}"
            names.append(reply.decode())
    return names


def tally(names: Iterable[str]) -> dict[str, int]:
    return dict(Counter(names))


# -- an independent model of SOURCE_IP, for exact expectations -----------------
# What the daemon documents (Sources/FlowgateCore/Hashing/StableHash.swift,
# Selection/MaglevTable.swift, Selection/SourceIPHash.swift): SipHash-2-4 with
# fixed keys; a member's table name is "address:port"; Maglev population
# (Eisenbud et al., NSDI 2016, §3.4, Pseudocode 1) over names sorted, table
# size 65537; a client's slot is siphash(its 4 address bytes) mod 65537. Written
# from that description, not translated from the Swift, so a disagreement
# means one side does not do what is documented.

_MASK = (1 << 64) - 1
_K0 = int.from_bytes(b"flowgate", "little")
_K1_OFFSET = int.from_bytes(b"maglevof", "little")
_K1_SKIP = int.from_bytes(b"maglevsk", "little")
_K1_SLOT = int.from_bytes(b"clientsl", "little")
MAGLEV_SIZE = 65537


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK


def siphash24(data: bytes, k0: int, k1: int) -> int:
    """SipHash-2-4 (Aumasson & Bernstein 2012), the reference algorithm."""
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573

    def sipround() -> None:
        nonlocal v0, v1, v2, v3
        v0 = (v0 + v1) & _MASK; v1 = _rotl(v1, 13) ^ v0; v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK; v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK; v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK; v1 = _rotl(v1, 17) ^ v2; v2 = _rotl(v2, 32)

    tail = len(data) % 8
    blocks = [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data) - tail, 8)]
    blocks.append(((len(data) & 0xFF) << 56) | int.from_bytes(data[len(data) - tail:], "little"))
    for m in blocks:
        v3 ^= m; sipround(); sipround(); v0 ^= m
    v2 ^= 0xFF
    for _ in range(4):
        sipround()
    return v0 ^ v1 ^ v2 ^ v3


def maglev_table(names: list[str], size: int = MAGLEV_SIZE) -> list[int]:
    """slot -> index into `names` (unweighted: one turn per member per round,
    members taking turns in name order)."""
    offsets = [siphash24(n.encode(), _K0, _K1_OFFSET) % size for n in names]
    skips = [siphash24(n.encode(), _K0, _K1_SKIP) % (size - 1) + 1 for n in names]
    order = sorted(range(len(names)), key=lambda i: (names[i], i))
    nxt = [0] * len(names)
    table = [-1] * size
    filled = 0
    while filled < size:
        for i in order:
            c = (offsets[i] + nxt[i] * skips[i]) % size
            while table[c] >= 0:
                nxt[i] += 1
                c = (offsets[i] + nxt[i] * skips[i]) % size
            table[c] = i
            nxt[i] += 1
            filled += 1
            if filled == size:
                break
    return table


def expected_source_ip_member(table: list[int], client_ipv4: str) -> int:
    """Index of the member a client reaches when every member is usable."""
    return table[siphash24(socket.inet_aton(client_ipv4), _K0, _K1_SLOT) % len(table)]
