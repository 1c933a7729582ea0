#!/usr/bin/env python3
"""The same traffic across a process replacement, three ways (docs/architecture.md §16.6):

  flowgated  `flowgated --takeover` (listeners, connections, sessions, state handed over)
  haproxy    a new `haproxy -x <stats socket> -sf <old pid>` (listeners passed with
             `expose-fd listeners`; the old process keeps its connections until they end)
  nginx      binary upgrade: USR2 to the master (a new master inherits the listeners),
             then QUIT to the old master (its workers finish their connections)

Traffic per proxy (all through 127.0.0.1, bounded): a 20 s iperf3 TCP transfer,
a loop of new connections each echoing one line (refused / reset / other
failures counted), and 100 long-lived connections echoing back to back (reset,
byte mismatch and longest wait counted). The replacement happens 5 s in. For
each proxy: connections refused and reset, the iperf3 result, whether the old
process was still running when the transfer ended, and how long the old one
lived after the replacement.

    python3 bench/takeover/reload_compare.py [--flowgated .build/debug/flowgated] [--only flowgated,haproxy,nginx]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests/IntegrationTests"))
from harness import Daemon, Iperf3Server, TcpBackend, config, free_port_range, listener, member, pool  # noqa: E402
from test_ops_handover import EchoFleet  # noqa: E402
from test_ops_takeover import ConnectLoop  # noqa: E402

SECONDS = 20
SWITCH_AT = 5


def wait_listening(port: int, timeout: float = 10) -> None:
    from harness import tcp_listening_ports
    deadline = time.monotonic() + timeout
    while port not in tcp_listening_ports():
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on {port}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class FlowgateRun:
    name = "flowgated"

    def __init__(self, binary, iperf_port, echo_port, listen_iperf, listen_echo, work):
        p1, p2 = pool([member(iperf_port)]), pool([member(echo_port)])
        self.cfg = config([listener([listen_iperf], p1["id"]), listener([listen_echo], p2["id"])], [p1, p2], workers=2,
                          tuning={"drain_timeout": 60})
        self.binary = binary
        self.old = self.new = None

    def start(self):
        self.old = Daemon(self.cfg, binary=self.binary).start()
        return self.old.pid

    def replace(self):
        self.new = Daemon(self.cfg, binary=self.binary, args=["--takeover"], control_socket=self.old.control_socket,
                          state_file=self.old.state_file).start()

    def stop(self):
        for d in (self.new, self.old):
            if d:
                d.stop()


class HAProxyRun:
    name = "haproxy"

    def __init__(self, binary, iperf_port, echo_port, listen_iperf, listen_echo, work):
        self.work = Path(work)
        self.sock = self.work / "haproxy.sock"
        self.pidfile = self.work / "haproxy.pid"
        self.cfg = self.work / "haproxy.cfg"
        self.cfg.write_text(f"""global
    nbthread 2
    maxconn 5000
    stats socket {self.sock} mode 600 level admin expose-fd listeners
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
listen iperf
    bind 127.0.0.1:{listen_iperf}
    server s1 127.0.0.1:{iperf_port}
listen echo
    bind 127.0.0.1:{listen_echo}
    server s1 127.0.0.1:{echo_port}
""")
        self.procs: list[subprocess.Popen] = []

    def start(self):
        p = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg), "-p", str(self.pidfile)],
                             stdout=subprocess.DEVNULL, stderr=open(self.work / "old.log", "w"))
        self.procs.append(p)
        deadline = time.monotonic() + 10
        while not self.sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return p.pid

    def replace(self):
        old = self.procs[0].pid
        p = subprocess.Popen(["haproxy", "-db", "-f", str(self.cfg), "-p", str(self.pidfile), "-x", str(self.sock),
                              "-sf", str(old)], stdout=subprocess.DEVNULL, stderr=open(self.work / "new.log", "w"))
        self.procs.append(p)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class NginxRun:
    name = "nginx"

    def __init__(self, binary, iperf_port, echo_port, listen_iperf, listen_echo, work):
        self.work = Path(work)
        self.pidfile = self.work / "nginx.pid"
        self.cfg = self.work / "nginx.conf"
        self.cfg.write_text(f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 2;
worker_rlimit_nofile 20000;
pid {self.pidfile};
error_log {self.work}/error.log warn;
events {{ worker_connections 10000; }}
stream {{
    access_log off;
    server {{ listen 127.0.0.1:{listen_iperf}; proxy_pass 127.0.0.1:{iperf_port}; }}
    server {{ listen 127.0.0.1:{listen_echo}; proxy_pass 127.0.0.1:{echo_port}; }}
}}
""")
        self.master = None

    def start(self):
        # Daemonized (the binary upgrade renames the pid file and forks a new master).
        subprocess.run(["/usr/sbin/nginx", "-p", str(self.work), "-c", str(self.cfg)], check=True)
        deadline = time.monotonic() + 10
        while not self.pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.master = int(self.pidfile.read_text())
        return self.master

    def replace(self):
        os.kill(self.master, signal.SIGUSR2)
        deadline = time.monotonic() + 10
        new = self.work / "nginx.pid"
        while time.monotonic() < deadline:
            if (self.work / "nginx.pid.oldbin").exists() and new.exists() and int(new.read_text()) != self.master:
                break
            time.sleep(0.02)
        self.new_master = int(new.read_text())
        os.kill(self.master, signal.SIGQUIT)

    def stop(self):
        for pid in (getattr(self, "new_master", None), self.master):
            if pid and alive(pid):
                os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)


def run(kind, args) -> dict:
    work = tempfile.mkdtemp(prefix=f"fg-reload-{kind.name}-", dir="/tmp")
    os.chmod(work, 0o755)
    iperf_port, listen_iperf, listen_echo = free_port_range(3)
    echo = TcpBackend("echo", mode="echo")
    server = Iperf3Server(iperf_port)
    proxy = kind(args.flowgated, iperf_port, echo.port, listen_iperf, listen_echo, work)
    result: dict = {"proxy": kind.name}
    try:
        old_pid = proxy.start()
        wait_listening(listen_echo)
        iperf_out: dict = {}

        def iperf():
            done = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(listen_iperf), "-t", str(SECONDS), "-J",
                                   "-b", "2G"], capture_output=True, text=True, timeout=SECONDS + 60)
            iperf_out["json"] = done.stdout
            iperf_out["code"] = done.returncode
            iperf_out["ended"] = time.monotonic()

        t = threading.Thread(target=iperf)
        with ConnectLoop([listen_echo]) as loop, EchoFleet([listen_echo], 100) as fleet:
            t.start()
            time.sleep(SWITCH_AT)
            switched = time.monotonic()
            proxy.replace()
            old_gone = None
            while t.is_alive():
                if old_gone is None and not alive(old_pid):
                    old_gone = time.monotonic()
                time.sleep(0.05)
            t.join()
            old_alive_at_end = alive(old_pid)
            time.sleep(1)
        report = json.loads(iperf_out["json"] or "{}")
        end = report.get("end", {})
        result.update({
            "new_connections_ok": loop.ok, "refused": loop.refused,
            "reset": sum("ConnectionResetError" in o for o in loop.other),
            "other_failures": [o for o in loop.other if "ConnectionResetError" not in o][:3],
            "long_lived_errors": len(fleet.errors), "long_lived_byte_mismatch": len(fleet.mismatched()),
            "long_lived_longest_wait_ms": round(fleet.longest_pause * 1000, 1),
            "iperf_exit": iperf_out["code"], "iperf_error": report.get("error"),
            "iperf_sent": end.get("sum_sent", {}).get("bytes"), "iperf_received": end.get("sum_received", {}).get("bytes"),
            "old_process_alive_when_iperf_ended": old_alive_at_end,
            "old_process_lived_after_switch_s": round((old_gone or time.monotonic()) - switched, 2),
        })
    finally:
        proxy.stop()
        server.stop()
        echo.stop()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowgated", default=str(REPO / ".build/debug/flowgated"))
    ap.add_argument("--only", default="flowgated,haproxy,nginx")
    args = ap.parse_args()
    kinds = {"flowgated": FlowgateRun, "haproxy": HAProxyRun, "nginx": NginxRun}
    for name in args.only.split(","):
        if name != "flowgated" and shutil.which(name) is None:
            print(f"{name}: not installed (.ci/setup.sh --bench installs it)")
            continue
        print(json.dumps(run(kinds[name], args)), flush=True)


if __name__ == "__main__":
    main()
