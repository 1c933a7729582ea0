#!/usr/bin/env python3
"""Where the CPU goes: one load, direct and through flowgated, with every
process's user and system CPU sampled over the middle of the run, the CPU
each spends per unit of work, and (with --strace) the proxy's system calls
per unit of work. `perf` is not available on this machine; this is the
profile the issue-7 closing note quotes for the targets that were missed.

    python3 bench/profile/cpu_split.py [--flowgated .build/release/flowgated]
        [--tests tcp4,udp,cps,rps,hka,hcps] [--seconds 5] [--runs 2] [--strace] [--proxy haproxy]

--proxy haproxy measures HAProxy (plain TCP mode, `nbthread 2`, as
bench/configs/haproxy.cfg.tmpl) the same way instead of flowgated, for the
TCP loads (it has no UDP and no HTTP pool here).

Loads: tcp4 = iperf3 -P 4; udp = iperf3 -u -l 64 -b 0 -w 4M; cps = wrk -t2
-c50 with `Connection: close` against a loopback nginx; rps = the same with
keep-alive; hka and hcps = rps and cps through an HTTP pool (`protocol: HTTP`,
HTTP_COOKIE persistence) instead of a TCP pool. Every process is started here
and stopped by PID.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "udp"))
sys.path.insert(0, str(HERE.parent / "lib"))

import procfs  # noqa: E402
from common import REPO, free_port_range, full_config, release_ports, start_flowgated, stop, tcp_listening_ports  # noqa: E402

NGINX_TEMPLATE = REPO / "bench" / "configs" / "nginx-backend.conf.tmpl"
PROXY = "flowgated"   # or "haproxy" (--proxy)


def start_haproxy(workdir: Path, port: int, backend_port: int) -> subprocess.Popen:
    """HAProxy in TCP mode with two threads, as bench/configs/haproxy.cfg.tmpl."""
    cfg = workdir / "haproxy.cfg"
    cfg.write_text("global\n    nbthread 2\n    maxconn 5000\n\ndefaults\n    mode tcp\n    timeout connect 5s\n"
                   "    timeout client 120s\n    timeout server 120s\n\n"
                   f"listen l\n    bind 127.0.0.1:{port}\n    server s 127.0.0.1:{backend_port}\n")
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while port not in tcp_listening_ports():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError("haproxy did not listen")
        time.sleep(0.05)
    return proc


def sample(pids: dict[str, int], seconds: float) -> dict[str, tuple[float, float]]:
    """% of one core (user, system) per named process and its descendants
    (nginx's workers) over `seconds`."""
    trees = {n: procfs.process_tree(p) for n, p in pids.items()}
    before = {n: procfs.user_system_seconds(t) for n, t in trees.items()}
    time.sleep(seconds)
    after = {n: procfs.user_system_seconds(t) for n, t in trees.items()}
    return {n: (100 * (after[n][0] - before[n][0]) / seconds, 100 * (after[n][1] - before[n][1]) / seconds)
            for n in pids}


def start_strace(pid: int, out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid), "-o", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(0.5)   # attached to every thread before the load starts
    return proc


def stop_strace(proc: subprocess.Popen, out: Path) -> dict[str, int]:
    proc.send_signal(2)   # SIGINT: strace detaches and writes its summary
    proc.wait(30)
    counts = {}
    for line in out.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if m and m.group(2) != "total":
            counts[m.group(2)] = int(m.group(1))
    return counts


class Load:
    """One load generator: starts its backend, runs, returns work done per second."""
    unit = ""

    def __init__(self, workdir: Path, backend_port: int, seconds: int):
        self.workdir, self.backend_port, self.seconds = workdir, backend_port, seconds
        self.backend = None

    def start_backend(self):
        raise NotImplementedError

    def client(self, port: int) -> list[str]:
        raise NotImplementedError

    def rate(self, output: str) -> float:
        raise NotImplementedError

    def stop_backend(self):
        if self.backend and self.backend.poll() is None:
            self.backend.terminate()
            try:
                self.backend.wait(5)
            except subprocess.TimeoutExpired:
                self.backend.kill()
                self.backend.wait()


class Iperf(Load):
    def __init__(self, workdir, backend_port, seconds, args, unit, per):
        super().__init__(workdir, backend_port, seconds)
        self.args, self.unit, self.per = args, unit, per

    def start_backend(self):
        self.backend = subprocess.Popen(["iperf3", "-s", "-p", str(self.backend_port)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while self.backend_port not in tcp_listening_ports():
            if time.monotonic() > deadline:
                raise RuntimeError("iperf3 -s did not listen")
            time.sleep(0.05)

    def client(self, port):
        return ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(self.seconds), "-J", "--connect-timeout", "3000",
                *self.args]

    def rate(self, output):
        end = json.loads(output[output.index("{"):])["end"]
        received = end["sum_received"]
        return self.per(received)


class Wrk(Load):
    unit = "req/s"

    def __init__(self, workdir, backend_port, seconds, close):
        super().__init__(workdir, backend_port, seconds)
        self.close = close
        self.unit = "conn/s" if close else "req/s"

    def start_backend(self):
        ngdir = self.workdir / "nginx"
        ngdir.mkdir(exist_ok=True)
        conf = NGINX_TEMPLATE.read_text().replace("${workdir}", str(ngdir)).replace("${port}", str(self.backend_port))
        conf = conf.replace("user www-data;", "user root;")
        (ngdir / "nginx.conf").write_text(conf)
        self.backend = subprocess.Popen(["nginx", "-c", str(ngdir / "nginx.conf")], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while self.backend_port not in tcp_listening_ports():
            if self.backend.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx backend did not listen")
            time.sleep(0.05)

    def stop_backend(self):
        if self.backend and self.backend.poll() is None:
            self.backend.send_signal(3)   # SIGQUIT: nginx's graceful stop, workers included
            try:
                self.backend.wait(10)
            except subprocess.TimeoutExpired:
                self.backend.kill()
                self.backend.wait()

    def client(self, port):
        headers = ["-H", "Connection: close"] if self.close else []
        return ["wrk", "-t", "2", "-c", "50", "-d", f"{self.seconds}s", "--timeout", "2s", *headers,
                f"http://127.0.0.1:{port}/"]

    def rate(self, output):
        return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def make_load(name, workdir, backend_port, seconds):
    if name == "tcp4":
        return Iperf(workdir, backend_port, seconds, ["-P", "4"], "Gbit/s", lambda r: r["bits_per_second"] / 1e9)
    if name == "udp":
        return Iperf(workdir, backend_port, seconds, ["-u", "-l", "64", "-b", "0", "-w", "4M"], "datagrams/s",
                     lambda r: r["bytes"] / 64 / r["seconds"])
    if name == "cps":
        return Wrk(workdir, backend_port, seconds, close=True)
    if name in ("rps", "hka"):
        return Wrk(workdir, backend_port, seconds, close=False)
    if name == "hcps":
        return Wrk(workdir, backend_port, seconds, close=True)
    raise SystemExit(f"unknown test {name}")


def run_once(load: Load, port: int, proxy: subprocess.Popen | None, use_strace: bool, workdir: Path) -> dict:
    """One run of the load. With `use_strace`, strace counts the proxy's
    system calls over the whole run, so calls / (rate x seconds) is per unit."""
    load.start_backend()
    tracer = None
    try:
        if use_strace and proxy:
            tracer = start_strace(proxy.pid, workdir / "strace.txt")
        client = subprocess.Popen(load.client(port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  start_new_session=True)
        try:
            cpu = {}
            if not tracer:
                time.sleep(min(1.5, load.seconds / 3))
                pids = {"client": client.pid, "backend": load.backend.pid}
                if proxy:
                    pids[PROXY] = proxy.pid
                cpu = sample(pids, max(1.0, load.seconds / 2))
            output, _ = client.communicate(timeout=load.seconds + 30)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        calls = stop_strace(tracer, workdir / "strace.txt") if tracer else {}
        tracer = None
        return {"rate": load.rate(output), "cpu": cpu, "calls": calls}
    finally:
        if tracer and tracer.poll() is None:
            tracer.kill()
            tracer.wait()
        load.stop_backend()


def add_http_pool(config: dict, http_port: int, backend_port: int) -> None:
    """A TCP listener on `http_port` whose pool speaks HTTP with HTTP_COOKIE
    persistence (the `hka`/`hcps` shape of bench/run.sh) to the same backend."""
    pool = dict(config["pools"][-1], id="361835ef-0207-4300-ab5a-cf9c48f9f5ad", name="http", protocol="HTTP",
                session_persistence={"type": "HTTP_COOKIE", "persistence_timeout": 60})
    pool["members"] = [dict(pool["members"][0], id="461835ef-0207-4300-ab5a-cf9c48f9f5ad")]
    listener = dict(config["accelerators"][0]["listeners"][-1], ListenerArn=config["accelerators"][0]["listeners"][-1]
                    ["ListenerArn"][:-8] + "0a1b2c3f", PortRanges=[{"FromPort": http_port, "ToPort": http_port}],
                    pool_id=pool["id"])
    config["pools"].append(pool)
    config["accelerators"][0]["listeners"].append(listener)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flowgated", default=str(REPO / ".build" / "release" / "flowgated"))
    ap.add_argument("--tests", default="tcp4,udp,cps,rps")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--strace", action="store_true", help="also count the proxy's system calls (a separate, slower run)")
    ap.add_argument("--proxy", choices=["flowgated", "haproxy"], default="flowgated")
    ap.add_argument("--listener", default="{}", metavar="JSON",
                    help='extra fields for flowgated\'s TCP listener, e.g. \'{"tcp_defer_accept": 1}\'')
    args = ap.parse_args()
    global PROXY
    PROXY = args.proxy
    if args.strace and not shutil.which("strace"):
        raise SystemExit("strace is not installed (apt-get install -y strace)")
    ports = free_port_range(3)
    port, backend_port, http_port = ports[0], ports[0] + 1, ports[0] + 2
    workdir = Path(tempfile.mkdtemp(prefix="flowgate-cpu-split."))
    if PROXY == "haproxy":
        proxy = start_haproxy(workdir, port, backend_port)
    else:
        cfg = full_config(port, backend_port, also_tcp=True, workers=2, workdir=workdir)
        for l in cfg["accelerators"][0]["listeners"]:
            if l["Protocol"] == "TCP":
                l.update(json.loads(args.listener))
        add_http_pool(cfg, http_port, backend_port)
        proxy = start_flowgated(Path(args.flowgated), cfg, workdir, port)
    try:
        for name in args.tests.split(","):
            load = make_load(name, workdir, backend_port, args.seconds)
            rows = {"direct": [], PROXY: []}
            proxy_port = http_port if name in ("hka", "hcps") else port
            for _ in range(args.runs):
                rows["direct"].append(run_once(load, backend_port, None, False, workdir))
                rows[PROXY].append(run_once(load, proxy_port, proxy, False, workdir))
            print(f"\n## {name} ({load.unit}; {args.runs} runs each, medians; CPU in % of one core, user+sys)")
            direct_rate = statistics.median(r["rate"] for r in rows["direct"])
            for label, runs in rows.items():
                rate = statistics.median(r["rate"] for r in runs)
                parts = [f"{label}: {rate:,.1f} {load.unit}" + (f" ({rate / direct_rate:.2f}x)" if label != "direct" else "")]
                for proc in ("client", PROXY, "backend"):
                    if proc not in runs[0]["cpu"]:
                        continue
                    user = statistics.median(r["cpu"][proc][0] for r in runs)
                    system = statistics.median(r["cpu"][proc][1] for r in runs)
                    per = (user + system) / rate
                    scale, unit = (1, "% per Gbit/s") if load.unit == "Gbit/s" else (1e4, "µs per unit")
                    parts.append(f"{proc} {user:.0f}+{system:.0f}% ({per * scale:.2f} {unit})")
                total = sum(statistics.median(sum(r["cpu"][p]) for r in runs) for p in runs[0]["cpu"])
                parts.append(f"all {total:.0f}%")
                print("- " + "; ".join(parts))
            if args.strace:
                traced = run_once(load, proxy_port, proxy, True, workdir)
                done = traced["rate"] * args.seconds
                if load.unit == "Gbit/s":
                    per_unit = {k: v / (done * 1e9 / 8 / 2**20) for k, v in traced["calls"].items()}
                    what = "per forwarded MiB"
                else:
                    per_unit = {k: v / done for k, v in traced["calls"].items()}
                    what = "per " + load.unit.split("/")[0].rstrip("s")
                listing = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_unit.items(), key=lambda kv: -kv[1])
                                    if v >= 0.005)
                print(f"- {PROXY} system calls {what} (strace -c, slowed run at {traced['rate']:,.0f} {load.unit}): "
                      f"{listing}; total {sum(per_unit.values()):.2f}")
    finally:
        stop(proxy)
        release_ports(ports)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
