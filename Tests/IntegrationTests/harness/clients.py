"""Client-side helpers for talking through the proxy.

`source` binds the client socket to a given local address first, e.g.
127.0.0.2 .. 127.255.255.254 (all of 127/8 is loopback on Linux), to act as
different client IPs for SOURCE_IP affinity and persistence tests.
"""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def tcp_connect(port: int, host: str = "127.0.0.1", source: str | None = None,
                timeout: float = 5.0) -> socket.socket:
    s = socket.socket(_family(host), socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if source is not None:
            s.bind((source, 0))
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


def recv_until_eof(s: socket.socket, limit: int = 1 << 31) -> bytes:
    out = bytearray()
    while len(out) < limit:
        chunk = s.recv(min(1 << 20, limit - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def recv_line(s: socket.socket, limit: int = 4096) -> bytes:
    """Bytes up to and excluding the first newline (or EOF)."""
    out = bytearray()
    while len(out) < limit:
        b = s.recv(1)
        if not b or b == b"\n":
            break
        out += b
    return bytes(out)


def tcp_exchange(port: int, data: bytes = b"", host: str = "127.0.0.1", source: str | None = None,
                 timeout: float = 5.0) -> bytes:
    """Connect, send `data`, half-close, return everything read until EOF."""
    with tcp_connect(port, host, source, timeout) as s:
        if data:
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return recv_until_eof(s)


def tcp_member_name(port: int, host: str = "127.0.0.1", source: str | None = None,
                    timeout: float = 5.0) -> str:
    """Which TcpBackend(mode="id") served a new connection: its name."""
    with tcp_connect(port, host, source, timeout) as s:
        return recv_line(s).decode()


def tcp_roundtrip(port: int, nbytes: int, host: str = "127.0.0.1", chunk: int = 1 << 20,
                  timeout: float = 60.0, source: str | None = None) -> tuple[str, str, int]:
    """Stream `nbytes` of random data to an echo member through the proxy
    while reading the echo concurrently (sending all first would deadlock on
    full buffers). Returns (sha256 sent, sha256 received, bytes received)."""
    sent_hash = hashlib.sha256()
    recv_hash = hashlib.sha256()
    received = 0
    error: list[BaseException] = []
    deadline = time.monotonic() + timeout
    s = tcp_connect(port, host, source, timeout=min(timeout, 10.0))
    block = os.urandom(chunk)

    def writer() -> None:
        try:
            left = nbytes
            while left > 0:
                # Vary the data so a relay that repeats a buffer is caught.
                piece = hashlib.sha256(block[:64] + left.to_bytes(8, "big")).digest() + block
                piece = piece[: min(len(piece), left)]
                s.sendall(piece)
                sent_hash.update(piece)
                left -= len(piece)
            s.shutdown(socket.SHUT_WR)
        except BaseException as e:  # reported by the caller
            error.append(e)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        while True:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            data = s.recv(1 << 20)
            if not data:
                break
            recv_hash.update(data)
            received += len(data)
    finally:
        t.join(max(0.1, deadline - time.monotonic()))
        s.close()
    if error:
        raise error[0]
    return sent_hash.hexdigest(), recv_hash.hexdigest(), received


def udp_socket(host: str = "127.0.0.1", source: str | None = None, port: int = 0,
               timeout: float = 2.0) -> socket.socket:
    s = socket.socket(_family(host), socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.bind((source or ("::1" if ":" in host else "127.0.0.1"), port))
    return s


def udp_exchange(port: int, data: bytes, host: str = "127.0.0.1", source: str | None = None,
                 timeout: float = 2.0) -> tuple[bytes, tuple]:
    """Send one datagram from a fresh socket; return (reply, reply's source).
    Raises socket.timeout when nothing comes back."""
    with udp_socket(host, source, timeout=timeout) as s:
        s.sendto(data, (host, port))
        reply, peer = s.recvfrom(65535)
        return reply, peer[:2]
