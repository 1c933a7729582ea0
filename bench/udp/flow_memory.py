#!/usr/bin/env python3
"""Flow-table memory per UDP flow: start flowgated (one listener, idle
timeout 600 s), send ONE datagram from each of N distinct (source IP in
127.0.0.0/8, source port) pairs, wait until the daemon holds N upstream
sockets (one per flow), and report (RSS after - RSS before) / N. Kernel
socket memory is not in RSS; /proc/net/sockstat's UDP line is shown too.

Each flow owns a connected upstream socket, so N flows need N descriptors:
the daemon runs under `prlimit --nofile` (root; this machine's default hard
limit is 20000). Bounded: gives up after --timeout seconds.

    python3 bench/udp/flow_memory.py [--flows 100000] [--flowgated .build/release/flowgated]
"""
from __future__ import annotations

import argparse
import os
import resource
import socket
import tempfile
import time
from pathlib import Path

from common import REPO, free_port_range, full_config, release_ports, start_flowgated, stop


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sockstat_udp() -> str:
    for line in open("/proc/net/sockstat"):
        if line.startswith("UDP:"):
            return line.strip()
    return ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowgated", default=str(REPO / ".build/release/flowgated"))
    ap.add_argument("--flows", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--prlimit", action="store_true", help="raise the daemon's descriptor limit with prlimit (root)")
    args = ap.parse_args()
    n = args.flows
    ports = free_port_range(1)
    port = ports[0]
    work = Path(tempfile.mkdtemp(prefix="fg-udp-mem-", dir="/tmp"))
    # The member: bound, never read (no replies, no ICMP back to the flows).
    member = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    member.bind(("127.0.0.1", 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = n + 1000
    # Raising the hard limit needs CAP_SYS_RESOURCE; without it, run with the
    # flows that fit (the daemon raises its soft limit to the hard one).
    prefix = ["prlimit", f"--nofile={limit}:{limit}"] if limit > hard and args.prlimit else []
    if limit > hard and not prefix:
        raise SystemExit(f"{n} flows need {limit} descriptors; the hard limit is {hard}: use --flows {hard - 1000} or --prlimit as root")
    cfg = full_config(port, member.getsockname()[1], also_tcp=False, workers=args.workers, idle_timeout=600,
                      max_udp_flows=max(262144, n), workdir=work)
    fg = start_flowgated(Path(args.flowgated), cfg, work, port, prefix=prefix)
    try:
        time.sleep(1.0)
        base_rss, base_fds = rss_kib(fg.pid), open_fds(fg.pid)
        print(f"before: rss {base_rss} KiB, fds {base_fds}, {sockstat_udp()}")
        # 1000 source IPs 127.1.x.y × 100 source ports = 100,000 distinct flows.
        per_ip = 100
        sent = 0
        deadline = time.monotonic() + args.timeout
        for i in range((n + per_ip - 1) // per_ip):
            ip = f"127.1.{i // 250}.{i % 250 + 1}"
            for j in range(per_ip):
                if sent == n:
                    break
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((ip, 20000 + j))
                s.sendto(b"x", ("127.0.0.1", port))
                s.close()
                sent += 1
            # Pace: let the daemon keep up (its 4 MiB receive buffer holds a few
            # thousand tiny datagrams); wait while it is far behind.
            while open_fds(fg.pid) - base_fds < sent - 2000:
                if time.monotonic() > deadline:
                    raise RuntimeError("daemon fell behind; timed out")
                time.sleep(0.005)
        while open_fds(fg.pid) - base_fds < n and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        rss, fds = rss_kib(fg.pid), open_fds(fg.pid)
        flows = fds - base_fds
        print(f"after:  rss {rss} KiB, fds {fds}, {sockstat_udp()}")
        print(f"live flows (new upstream sockets): {flows} of {n} sent")
        print(f"RSS delta {rss - base_rss} KiB = {(rss - base_rss) * 1024 / max(1, flows):.0f} bytes per flow")
        log = (work / "stderr.log").read_text()
        evicted = [l for l in log.splitlines() if "udp_" in l][:5]
        if evicted:
            print("daemon udp log lines:", *evicted, sep="\n  ")
    finally:
        stop(fg)
        member.close()
        release_ports(ports)


if __name__ == "__main__":
    main()
