"""New TCP connections per second through a proxy port, as fast as one
client can: connect, send one byte, read the echo, close; each step bounded
by --timeout. Prints one JSON line: ok, failed, seconds, ok_per_s.

    python bench/security/loadgen.py --port P --seconds 5"""
from __future__ import annotations

import argparse
import json
import socket
import struct
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=1.0)
    args = ap.parse_args()
    ok = failed = 0
    errors: dict[str, int] = {}
    start = time.monotonic()
    deadline = start + args.seconds
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        # RST on close: no TIME_WAIT pile-up on this side at thousands per second.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            s.connect(("127.0.0.1", args.port))
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise ConnectionError("no echo")
            ok += 1
        except OSError as error:
            failed += 1
            name = type(error).__name__
            errors[name] = errors.get(name, 0) + 1
        finally:
            s.close()
    seconds = time.monotonic() - start
    print(json.dumps({"ok": ok, "failed": failed, "seconds": round(seconds, 3),
                      "ok_per_s": round(ok / seconds, 1), "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
