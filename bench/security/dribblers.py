"""Slow unauthenticated clients on a control endpoint: N connections that
each send one byte of a request head every `interval` seconds, on one
background thread (poll(2), non-blocking sockets). Records, per connection,
when it was established and when the server closed or reset it."""
from __future__ import annotations

import errno
import select
import socket
import threading
import time

# A head that never ends within the run: the header value goes on for 64 KiB.
HEAD = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: GlobalAccelerator_V20180706.ListAccelerators\r\nX-Dribble: " + b"a" * 65536


class Conn:
    __slots__ = ("sock", "opened", "established", "closed", "sent", "answered", "how")

    def __init__(self, sock: socket.socket, now: float):
        self.sock = sock
        self.opened = now
        self.established: float | None = None
        self.closed: float | None = None
        self.sent = 0
        self.answered = False  # the server wrote something (e.g. 408/400/503) before closing
        self.how = ""


class Dribblers:
    def __init__(self, port: int, count: int, interval: float = 0.5, head: bytes = HEAD, host: str = "127.0.0.1"):
        self.port, self.count, self.interval, self.head, self.host = port, count, interval, head, host
        self.conns: list[Conn] = []
        self.started = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dribblers", daemon=True)

    def start(self) -> "Dribblers":
        self.started = time.monotonic()
        for _ in range(self.count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex((self.host, self.port))
            c = Conn(s, time.monotonic())
            if err not in (0, errno.EINPROGRESS):
                c.closed, c.how = c.opened, errno.errorcode.get(err, str(err))
                s.close()
            self.conns.append(c)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for c in self.conns:
            try:
                c.sock.close()
            except OSError:
                pass

    def _close(self, c: Conn, now: float, how: str) -> None:
        c.closed, c.how = now, how
        try:
            c.sock.close()
        except OSError:
            pass

    def _loop(self) -> None:
        poller = select.poll()
        by_fd = {}
        for c in self.conns:
            if c.closed is None:
                by_fd[c.sock.fileno()] = c
                poller.register(c.sock, select.POLLOUT | select.POLLIN)
        next_tick = time.monotonic()
        while not self._stop.is_set() and by_fd:
            timeout = max(0.0, next_tick - time.monotonic())
            for fd, ev in poller.poll(timeout * 1000):
                c = by_fd.get(fd)
                if c is None:
                    continue
                now = time.monotonic()
                if c.established is None:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        poller.unregister(fd); del by_fd[fd]
                        self._close(c, now, "connect:" + errno.errorcode.get(err, str(err)))
                        continue
                    if ev & select.POLLOUT:
                        c.established = now
                        poller.modify(fd, select.POLLIN)
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    try:
                        data = c.sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError as error:
                        poller.unregister(fd); del by_fd[fd]
                        self._close(c, now, type(error).__name__)
                        continue
                    if data:
                        c.answered = True
                        continue
                    poller.unregister(fd); del by_fd[fd]
                    self._close(c, now, "eof")
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + self.interval
                for fd, c in list(by_fd.items()):
                    if c.established is None or c.sent >= len(self.head):
                        continue
                    try:
                        c.sent += c.sock.send(self.head[c.sent:c.sent + 1])
                    except BlockingIOError:
                        pass
                    except OSError as error:
                        poller.unregister(fd); del by_fd[fd]
                        self._close(c, now, type(error).__name__)

    # -- figures ------------------------------------------------------------------------------------------
    def established(self) -> int:
        return sum(1 for c in self.conns if c.established is not None)

    def open_now(self) -> int:
        return sum(1 for c in self.conns if c.established is not None and c.closed is None)

    def longest_connected(self, until: float | None = None) -> float:
        """Longest time any connection stayed established (up to `until` for those still open)."""
        end = until or time.monotonic()
        spans = [(c.closed or end) - c.established for c in self.conns if c.established is not None]
        return max(spans, default=0.0)

    def closed_by_server(self) -> int:
        return sum(1 for c in self.conns if c.established is not None and c.closed is not None)
