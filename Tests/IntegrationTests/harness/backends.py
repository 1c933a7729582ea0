"""Real loopback backends for black-box tests: threaded, bounded, recorded.

TcpBackend modes:
  echo    echo every byte back; the client's half-close is passed on (shutdown(SHUT_WR))
  id      on accept write "<name>\\n", then echo
  sink    read to EOF, counting bytes and SHA-256, never write
  digest  like sink, then on EOF write "<bytes> <sha256hex>\\n" and close
  hold    accept and never read (a stalled reader, for backpressure tests)
UdpBackend modes:
  echo    reply with the datagram itself
  id      reply with the backend's name
  silent  count only
Every backend binds 127.0.0.1 (or the given host, e.g. ::1) port 0 unless told
a port, and stop() closes everything (the fixtures call it in teardown).
"""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

_POLL = 0.2  # how often blocked threads look at the stop flag


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@dataclass
class TcpConnectionRecord:
    peer: tuple
    bytes_received: int = 0
    bytes_sent: int = 0
    eof: bool = False          # the client half-closed (or closed)
    reset: bool = False        # the connection ended with an error (e.g. ECONNRESET)
    closed: threading.Event = field(default_factory=threading.Event)
    _hash: "hashlib._Hash" = field(default_factory=hashlib.sha256, repr=False)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class TcpBackend:
    MODES = ("echo", "id", "sink", "digest", "hold")

    def __init__(self, name: str, mode: str = "echo", port: int = 0, host: str = "127.0.0.1",
                 backlog: int = 1024, chunk: int = 256 * 1024):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, not {mode!r}")
        self.name = name
        self.mode = mode
        self.host = host
        self.chunk = chunk
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[TcpConnectionRecord] = []
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(_family(host), socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(backlog)
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"tcp-backend-{name}", daemon=True)
        self._accept_thread.start()

    # -- what tests read -------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def connections(self) -> list[TcpConnectionRecord]:
        with self._lock:
            return list(self._conns)

    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._conns)

    @property
    def peers(self) -> list[tuple]:
        return [c.peer for c in self.connections]

    @property
    def bytes_received(self) -> int:
        return sum(c.bytes_received for c in self.connections)

    def wait_accepted(self, n: int, timeout: float = 10.0) -> bool:
        return _wait_until(lambda: self.accepted >= n, timeout)

    def wait_closed(self, n: int | None = None, timeout: float = 10.0) -> bool:
        """Wait until n (default: all accepted so far) connections have ended."""
        def done() -> bool:
            conns = self.connections
            target = len(conns) if n is None else n
            return sum(1 for c in conns if c.closed.is_set()) >= target
        return _wait_until(done, timeout)

    def reset_counts(self) -> None:
        with self._lock:
            self._conns.clear()

    # -- lifecycle -------------------------------------------------------
    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accept_thread.join(5)
        for t in list(self._threads):
            t.join(5)

    close = stop

    def __enter__(self) -> "TcpBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"TcpBackend({self.name!r}, mode={self.mode!r}, port={self.port})"

    # -- internals -------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.01)  # e.g. EMFILE: do not spin
                continue
            record = TcpConnectionRecord(peer=peer)
            with self._lock:
                self._conns.append(record)
                self._sockets.add(conn)
            t = threading.Thread(target=self._serve, args=(conn, record), daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
            t.start()

    def _send(self, conn: socket.socket, data: bytes, record: TcpConnectionRecord) -> None:
        conn.sendall(data)
        record.bytes_sent += len(data)

    def _serve(self, conn: socket.socket, record: TcpConnectionRecord) -> None:
        conn.settimeout(_POLL)
        try:
            if self.mode == "id":
                self._send(conn, (self.name + "\n").encode(), record)
            if self.mode == "hold":
                while not self._stop.is_set():
                    time.sleep(_POLL)
                return
            while not self._stop.is_set():
                try:
                    data = conn.recv(self.chunk)
                except socket.timeout:
                    continue
                if not data:
                    record.eof = True
                    break
                record.bytes_received += len(data)
                record._hash.update(data)
                if self.mode in ("echo", "id"):
                    conn.settimeout(None)
                    self._send(conn, data, record)
                    conn.settimeout(_POLL)
            if record.eof:
                if self.mode == "digest":
                    self._send(conn, f"{record.bytes_received} {record.sha256}\n".encode(), record)
                conn.shutdown(socket.SHUT_WR)
                # Wait briefly for the peer's close so it reads everything.
                conn.settimeout(5)
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
        except OSError:
            record.reset = True
        finally:
            with self._lock:
                self._sockets.discard(conn)
            conn.close()
            record.closed.set()


class UdpBackend:
    MODES = ("echo", "id", "silent")

    def __init__(self, name: str, mode: str = "echo", port: int = 0, host: str = "127.0.0.1",
                 rcvbuf: int = 4 * 1024 * 1024):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, not {mode!r}")
        self.name = name
        self.mode = mode
        self.host = host
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sources: list[tuple] = []
        self._payloads: list[bytes] = []
        self.keep_payloads = True
        self._sock = socket.socket(_family(host), socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        except OSError:
            pass
        self._sock.bind((host, port))
        self._sock.settimeout(_POLL)
        self.port: int = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._loop, name=f"udp-backend-{name}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._sources)

    @property
    def sources(self) -> list[tuple]:
        """(address, port) of every datagram received, in order."""
        with self._lock:
            return list(self._sources)

    @property
    def payloads(self) -> list[bytes]:
        with self._lock:
            return list(self._payloads)

    def source_counts(self) -> dict[tuple, int]:
        counts: dict[tuple, int] = {}
        for s in self.sources:
            counts[s] = counts.get(s, 0) + 1
        return counts

    def wait_count(self, n: int, timeout: float = 10.0) -> bool:
        return _wait_until(lambda: self.count >= n, timeout)

    def reset_counts(self) -> None:
        with self._lock:
            self._sources.clear()
            self._payloads.clear()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    close = stop

    def __enter__(self) -> "UdpBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"UdpBackend({self.name!r}, mode={self.mode!r}, port={self.port})"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self._sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue  # e.g. ECONNREFUSED from an earlier reply's ICMP
            with self._lock:
                self._sources.append(source[:2])
                if self.keep_payloads:
                    self._payloads.append(data)
            try:
                if self.mode == "echo":
                    self._sock.sendto(data, source)
                elif self.mode == "id":
                    self._sock.sendto(self.name.encode(), source)
            except OSError:
                pass
