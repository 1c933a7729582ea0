#!/usr/bin/env python3
"""Start time, descriptors and RSS of flowgated for one listener pair (TCP + UDP) over a port range, with
tuning.port_ranges lookup or per_port (issue 16, docs/architecture.md §20). Runs the daemon in a network namespace it
creates and removes (198.18.0.1 on its loopback), under `prlimit --nofile=N` so per_port can bind its sockets.

  sudo python3 bench/port_ranges/measure.py --mode lookup --from 1 --to 65535
  sudo python3 bench/port_ranges/measure.py --mode per_port --from 1 --to 65535 --nofile 1048576
  (--nofile 0: keep the current limit, for a sandbox that cannot raise its hard limit)

Start time = from exec to READY=1 (sd_notify, read from a socket this script binds); descriptors and VmRSS/VmHWM are
read from /proc at READY=1; kernel memory is the change in the namespace-independent Slab + percpu of /proc/meminfo
(noisy: other processes allocate too). Prints one JSON line.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def meminfo_kib(keys=("Slab", "Percpu")) -> int:
    total = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        k, v = line.split(":", 1)
        if k in keys:
            total += int(v.split()[0])
    return total


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["lookup", "per_port"], required=True)
    ap.add_argument("--from", dest="lo", type=int, default=1)
    ap.add_argument("--to", dest="hi", type=int, default=65535)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--nofile", type=int, default=1048576)
    ap.add_argument("--flowgated", default=str(ROOT / ".build/debug/flowgated"))
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    ns = f"fgpr{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="fg-pr-"))
    subprocess.run(["ip", "netns", "add", ns], check=True)
    proc = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "addr", "add", "198.18.0.1/32", "dev", "lo"], check=True)
        cfg = work / "flowgate.yaml"
        cfg.write_text(f"""workers: {a.workers}
state_file: {work}/state.json
control: {{unix_socket: {work}/control.sock}}
tuning: {{port_ranges: {a.mode}}}
project_id: 0123456789abcdef0123456789abcdef
pools:
  - {{name: t, protocol: TCP, lb_algorithm: ROUND_ROBIN, members: [{{address: 198.18.0.3}}]}}
  - {{name: u, protocol: UDP, lb_algorithm: ROUND_ROBIN, members: [{{address: 198.18.0.3}}]}}
accelerators:
  - Name: a
    listeners:
      - {{PortRanges: [{{FromPort: {a.lo}, ToPort: {a.hi}}}], Protocol: TCP, pool_id: t, bind: 198.18.0.1}}
      - {{PortRanges: [{{FromPort: {a.lo}, ToPort: {a.hi}}}], Protocol: UDP, pool_id: u, bind: 198.18.0.1}}
""")
        notify_path = str(work / "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(0.2)
        kmem0 = meminfo_kib()
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        t0 = time.monotonic()
        limit = ["prlimit", f"--nofile={a.nofile}:{a.nofile}"] if a.nofile > 0 else []
        proc = subprocess.Popen([*limit, "ip", "netns", "exec", ns, a.flowgated, "--config", str(cfg)], stdout=subprocess.DEVNULL,
                                stderr=open(work / "stderr.log", "wb"), env=env)
        ready = None
        deadline = time.monotonic() + a.timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                msg = notify.recv(4096).decode()
            except socket.timeout:
                continue
            if "READY=1" in msg.split("\n"):
                ready = time.monotonic() - t0
                break
        if proc.poll() is not None:
            print(json.dumps({"mode": a.mode, "ports": f"{a.lo}-{a.hi}", "exit": proc.returncode,
                              "stderr_tail": (work / "stderr.log").read_text(errors="replace")[-1500:]}))
            return 1
        status = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in Path(f"/proc/{proc.pid}/status").read_text().splitlines()}
        fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
        kmem = meminfo_kib() - kmem0
        out = {"mode": a.mode, "ports": f"{a.lo}-{a.hi}", "protocols": "TCP+UDP", "workers": a.workers,
               "ready_s": None if ready is None else round(ready, 3), "descriptors": fds,
               "rss_kib": int(status["VmRSS"].split()[0]), "hwm_kib": int(status["VmHWM"].split()[0]),
               "kernel_slab_percpu_delta_kib": kmem}
        if ready is None:
            out["stderr_tail"] = (work / "stderr.log").read_text(errors="replace")[-1500:]
        print(json.dumps(out))
        return 0 if ready is not None else 1
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        subprocess.run(["ip", "netns", "del", ns], check=False)


if __name__ == "__main__":
    sys.exit(main())
