"""Issue 11 item 2: slow unauthenticated clients on the TCP control endpoint.

The daemon runs under `prlimit --nofile=600` (as under systemd's
LimitNOFILE=600) with a TCP control endpoint and a TCP listener in front of a
loopback echo backend. 700 connections to the control endpoint each send one
byte of a request head every 0.5 s. Measured:
 (a) data-plane new connections/s (bench/security/loadgen.py: connect, 1 byte,
     echo, close; 1 s timeout per step) for 5 s without the attack, then for
     5 s while it runs;
 (b) GET /healthz on the control Unix socket during the attack (5 s timeout):
     status and latency;
 (c) how long the longest dribbler stays connected (the run is capped at
     --cap seconds from the start of the attack), and how many the server
     closed before the cap.

    python bench/security/dribble.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import common as c
from dribblers import Dribblers


def add_args(ap) -> None:
    ap.add_argument("--nofile", type=int, default=600)
    ap.add_argument("--dribblers", type=int, default=700)
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each connections/s measurement")
    ap.add_argument("--cap", type=float, default=20.0, help="seconds the attack runs")


def backend(port: int) -> None:
    proc = c.start_process([c.python(), str(c.REPO / "bench/security/echo_backend.py"), str(port)],
                           stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("echo backend did not start")


def cps(port: int, seconds: float) -> dict:
    proc = c.start_process([c.python(), str(c.REPO / "bench/security/loadgen.py"), "--port", str(port),
                            "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=seconds + 30)
    return json.loads(out.strip().splitlines()[-1])


def main(args) -> None:
    (data_port,) = c.ports(1)
    (backend_port,) = c.ports(1)
    (control_port,) = c.ports(1)
    backend(backend_port)
    cfg = c.single_pool_config([data_port], [c.member(backend_port)], workers=2,
                               control=c.control_section(control_port))
    d = c.daemon(args, cfg, nofile=args.nofile)
    base = cps(data_port, args.seconds)
    hz0, hz0_s, _ = c.unix_get(d.control_socket, "/healthz", 5.0)

    attack = Dribblers(control_port, args.dribblers, args.interval)
    c.at_exit(attack.stop)
    attack.start()
    time.sleep(3.0)  # let the connections establish and the daemon accept what it can
    fds = c.open_fds(d.pid)
    health: dict = {}

    def probe() -> None:
        time.sleep(0.5)
        health["status"], health["seconds"], health["error"] = c.unix_get(d.control_socket, "/healthz", 5.0)
    t = threading.Thread(target=probe, daemon=True)
    t.start()
    under = cps(data_port, args.seconds)
    t.join(10)
    remaining = attack.started + args.cap - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)
    end = time.monotonic()
    longest = attack.longest_connected(end)
    established, open_at_cap, closed = attack.established(), attack.open_now(), attack.closed_by_server()
    attack.stop()
    c.result("2 dribble", nofile=args.nofile, dribblers=args.dribblers, established=established,
             daemon_fds_under_attack=fds,
             cps_no_attack=base["ok_per_s"], cps_under_attack=under["ok_per_s"],
             flows_ok_failed_under_attack=f"{under['ok']}/{under['failed']}",
             healthz_unix_before=f"{hz0}@{hz0_s * 1000:.1f}ms",
             healthz_unix_under_attack=f"{health.get('status') or health.get('error') or 'none'}@{health.get('seconds', 0) * 1000:.0f}ms",
             longest_dribbler_connected_s=round(longest, 1), cap_s=args.cap,
             closed_by_server_before_cap=closed, still_open_at_cap=open_at_cap,
             daemon_alive=d.running, loadavg_1m=round(os.getloadavg()[0], 1))


if __name__ == "__main__":
    c.run("2 dribble", main, c.parse_args(__doc__, add_args, time_limit=120))
