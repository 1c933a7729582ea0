"""A single-threaded loopback echo server for the data-plane measurements
(selectors, no thread per connection, so it keeps up with a fast client).

    python bench/security/echo_backend.py PORT

Prints `ready` once listening; runs until killed."""
from __future__ import annotations

import selectors
import socket
import sys


def main() -> None:
    port = int(sys.argv[1])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    while True:
                        conn, _ = listener.accept()
                        conn.setblocking(False)
                        sel.register(conn, selectors.EVENT_READ, "conn")
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    pass  # EMFILE and the like: try again at the next event
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                try:
                    conn.send(data)
                except OSError:
                    data = b""
            if not data:
                sel.unregister(conn)
                conn.close()


if __name__ == "__main__":
    main()
