#!/usr/bin/env python3
"""iperf3 -u -b 0 -t 5 datagrams/s received by the server, and loss: direct vs
through flowgated vs through nginx's stream UDP proxy; 3 runs each,
interleaved, in one session; medians. Every process is started here and
stopped by PID.

    python3 bench/udp/iperf_udp.py [--flowgated .build/release/flowgated] [--lengths 64,1400] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import REPO, free_port_range, full_config, release_ports, start_flowgated, stop, tcp_listening_ports

NGINX_CONF = """
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
user root;
worker_processes 2;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
stream {{
    server {{
        listen 127.0.0.1:{port} udp reuseport rcvbuf=4m sndbuf=4m;   # same buffers as flowgated
        proxy_pass 127.0.0.1:{backend};
        proxy_responses 1000000000;
        proxy_timeout 30s;
    }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        proxy_pass 127.0.0.1:{backend};
    }}
}}
"""


def wait_listening(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 15
    while port not in tcp_listening_ports():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on {port}")
        time.sleep(0.05)


def run_iperf(port: int, length: int, seconds: int) -> dict:
    cmd = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-u", "-b", "0", "-l", str(length), "-t", str(seconds),
           "-w", "4M", "-J", "--connect-timeout", "5000"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    r = json.loads(done.stdout)
    if "error" in r:
        raise RuntimeError(f"{' '.join(cmd)}: {r['error']}")
    s = r["end"]["sum"]
    received = s["packets"] - s["lost_packets"]
    return {"sent": s["packets"], "received": received, "lost_percent": s["lost_percent"],
            "received_per_s": received / s["seconds"], "seconds": s["seconds"], "cmd": " ".join(cmd)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowgated", default=str(REPO / ".build/release/flowgated"))
    ap.add_argument("--lengths", default="64,1400")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    ports = free_port_range(3)
    backend, fg_port, ng_port = ports
    work = Path(tempfile.mkdtemp(prefix="fg-udp-bench-", dir="/tmp"))
    procs = []
    try:
        server = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(backend)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(server)
        wait_listening(backend, server, "iperf3 -s")
        fg = start_flowgated(Path(args.flowgated), full_config(fg_port, backend, also_tcp=True, workdir=work),
                             work, fg_port)
        procs.append(fg)
        wait_listening(fg_port, fg, "flowgated")
        (work / "nginx.conf").write_text(NGINX_CONF.format(dir=work, port=ng_port, backend=backend))
        ng = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf"), "-p", str(work)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(ng)
        wait_listening(ng_port, ng, "nginx")
        targets = {"direct": backend, "flowgated": fg_port, "nginx": ng_port}
        results: dict = {}
        for length in [int(x) for x in args.lengths.split(",")]:
            for run in range(args.runs):
                for name, port in targets.items():
                    r = run_iperf(port, length, args.seconds)
                    results.setdefault((length, name), []).append(r)
                    print(f"-l {length:5d} run {run + 1} {name:9s}: {r['received_per_s']:>10.0f} datagrams/s received,"
                          f" loss {r['lost_percent']:.2f}%  (sent {r['sent']})", flush=True)
                    time.sleep(1)
        print("\nmedians of", args.runs, "runs, iperf3 -u -b 0 -t", args.seconds, "-w 4M")
        print(f"{'length':>6} {'target':10} {'datagrams/s received':>22} {'loss %':>8}")
        for (length, name), rs in results.items():
            print(f"{length:>6} {name:10} {statistics.median(r['received_per_s'] for r in rs):>22.0f}"
                  f" {statistics.median(r['lost_percent'] for r in rs):>8.2f}")
        print("example command:", next(iter(results.values()))[0]["cmd"])
    finally:
        for p in reversed(procs):
            stop(p)
        release_ports(ports)


if __name__ == "__main__":
    main()
