#!/usr/bin/env python3
"""Memory per idle HTTP keep-alive connection through an HTTP pool: N client
connections each send one request, read the response and stay open (so each
also keeps its member connection), and flowgated's RSS with them minus its RSS
before, over N. The backend is the loopback nginx of bench/run.sh
(keepalive_timeout 60 s), the pool HTTP_COOKIE as in the hka/hcps tests.

    python3 bench/profile/http_idle_memory.py [--flowgated .build/release/flowgated] [--connections 2000]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "udp"))
sys.path.insert(0, str(HERE.parent / "lib"))
sys.path.insert(0, str(HERE))

from common import REPO, free_port_range, full_config, release_ports, start_flowgated, stop  # noqa: E402
from cpu_split import Wrk, add_http_pool  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowgated", default=str(REPO / ".build" / "release" / "flowgated"))
    ap.add_argument("--connections", type=int, default=2000)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.connections + 256)), hard))
    ports = free_port_range(3)
    port, backend_port, http_port = ports[0], ports[0] + 1, ports[0] + 2
    workdir = Path(tempfile.mkdtemp(prefix="flowgate-http-idle."))
    config = full_config(port, backend_port, also_tcp=True, workers=2, workdir=workdir)
    add_http_pool(config, http_port, backend_port)
    backend = Wrk(workdir, backend_port, 1, close=False)
    backend.start_backend()
    proxy = start_flowgated(Path(args.flowgated), config, workdir, port)
    held: list[socket.socket] = []
    try:
        # One warm-up request (first-use allocations: the worker's buffer pool, tables).
        for _ in range(4):
            with socket.create_connection(("127.0.0.1", http_port), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(4096)
        time.sleep(0.5)
        before = rss_kib(proxy.pid)
        for _ in range(args.connections):
            s = socket.create_connection(("127.0.0.1", http_port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(s)
        for s in held:
            data = b""
            while b"ok\n" not in data:
                piece = s.recv(4096)
                if not piece:
                    raise RuntimeError("connection closed before its response")
                data += piece
        time.sleep(1.0)
        after = rss_kib(proxy.pid)
        print(f"flowgated RSS before {before} KiB, with {args.connections} idle keep-alive HTTP connections "
              f"(each with its member connection) {after} KiB: {(after - before) * 1024 / args.connections:,.0f} "
              f"bytes per connection")
    finally:
        for s in held:
            s.close()
        stop(proxy)
        backend.stop_backend()
        release_ports(ports)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
