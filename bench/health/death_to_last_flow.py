#!/usr/bin/env python3
"""Time from a member's death to its last new flow (issue 6), over N trials.

A daemon fronts three `id` backends with a TCP health monitor (delay 1,
timeout 1, max_retries_down 2, max_retries 1 so trials recover fast).
A trial SIGKILLs one backend process (its listening socket closes at once:
connects are refused) and measures, from the kill:
  last_flow   when the member's pick counter (GET /metrics,
              flowgate_member_picks_total, polled every 10 ms) last rose:
              the last new flow the proxy gave it;
  offline     when ELB ListMembers first shows it OFFLINE.
Two modes:
  traffic     a client opens connections back to back during the death,
              so passive checks (the data plane's own connect failures) see it;
  idle        no traffic: only the active check can see it (offline only).
The backend is then restarted on its port and the trial waits for ONLINE.

    .venv/bin/python bench/health/death_to_last_flow.py [--trials 20]

Needs a built flowgated (.build/debug or FLOWGATED=path).
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Tests" / "IntegrationTests"))

from harness import Daemon, free_port_range, member, release_ports, single_pool_config  # noqa: E402
from harness.clients import tcp_member_name  # noqa: E402
from harness.metrics import metric_sum, parse_metrics  # noqa: E402


# A member as its own process, so a death is a SIGKILL: the kernel closes
# its listening socket at once and the port refuses from then on. (The
# harness's threaded TcpBackend keeps its socket until its accept poll
# returns, up to 200 ms after stop(), which would be measured as detection.)
MEMBER_SCRIPT = r"""
import socket, sys
name, port = sys.argv[1].encode() + b"\n", int(sys.argv[2])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(1024)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.sendall(name)
    except OSError:
        pass
    c.close()
"""


class ProcessBackend:
    def __init__(self, name: str, port: int = 0):
        self.name = name
        if port == 0:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
        self.port = port
        self.proc = subprocess.Popen([sys.executable, "-c", MEMBER_SCRIPT, name, str(port)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def statuses(d, pool_id):
    status, _, body = d.request("GET", f"/v3/{d.config['project_id']}/elb/pools/{pool_id}/members")
    assert status == 200, body
    return {m["protocol_port"]: (m["id"], m["operating_status"]) for m in json.loads(body)["members"]}


def picks(d, member_id):
    _, _, body = d.request("GET", "/metrics")
    return metric_sum(parse_metrics(body.decode()), "flowgate_member_picks_total", member=member_id)


def wait_status(d, pool_id, port, want, timeout):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if statuses(d, pool_id)[port][1] == want:
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"member on port {port} not {want} within {timeout} s")


def trial(d, pool_id, backends, victim_index, traffic: bool):
    victim = backends[victim_index]
    port = victim.port
    member_id = statuses(d, pool_id)[port][0]
    stop_load = threading.Event()
    load_errors = []

    def load():
        while not stop_load.is_set():
            try:
                tcp_member_name(d.listen_port, timeout=3)
            except OSError as e:
                load_errors.append(e)

    loader = threading.Thread(target=load, daemon=True)
    if traffic:
        loader.start()
        time.sleep(0.3)
    # A random phase against the 1 s check cadence (a trial starts right
    # after the check that brought the member back).
    time.sleep(random.uniform(0, 1))
    last_value = picks(d, member_id)
    death = time.monotonic()
    victim.stop()
    last_rise = death
    offline_at = None
    quiet_until = None
    while True:
        now = time.monotonic()
        value = picks(d, member_id)
        if value != last_value:
            last_value = value
            last_rise = now
        if offline_at is None and statuses(d, pool_id)[port][1] == "OFFLINE":
            offline_at = time.monotonic()
            quiet_until = offline_at + 0.5
        if quiet_until is not None and now >= quiet_until:
            break
        if now - death > 10:
            raise TimeoutError("member never went OFFLINE")
        time.sleep(0.01)
    stop_load.set()
    if traffic:
        loader.join(5)
    backends[victim_index] = ProcessBackend(victim.name, port=port)
    wait_status(d, pool_id, port, "ONLINE", 5)
    return last_rise - death, offline_at - death, len(load_errors)


def summary(name, values):
    values = sorted(values)
    return (f"{name}: n={len(values)} median={statistics.median(values) * 1000:.0f} ms "
            f"min={values[0] * 1000:.0f} ms max={values[-1] * 1000:.0f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args()
    ports = free_port_range(1, ("tcp",))
    backends = [ProcessBackend(n) for n in ("a", "b", "c")]
    hm = {"id": str(uuid.uuid4()), "type": "TCP", "delay": 1, "timeout": 1, "max_retries": 1, "max_retries_down": 2}
    cfg = single_pool_config(ports, [member(b.port) for b in backends], workers=2, pool_extra={"healthmonitor_id": hm["id"]})
    cfg["healthmonitors"] = [hm]
    pool_id = cfg["pools"][0]["id"]
    d = Daemon(cfg)
    d.listen_port = ports[0]
    try:
        d.start()
        for b in backends:
            wait_status(d, pool_id, b.port, "ONLINE", 5)
        results = {}
        for mode in ("traffic", "idle"):
            last, offline, errors = [], [], 0
            for i in range(args.trials):
                l, o, e = trial(d, pool_id, backends, i % 3, traffic=(mode == "traffic"))
                last.append(l)
                offline.append(o)
                errors += e
            results[mode] = (last, offline, errors)
        print(f"delay=1 timeout=1 max_retries_down=2 max_retries=1, 3 members, {args.trials} trials per mode")
        last, offline, errors = results["traffic"]
        print("with traffic (passive + active):")
        print("  " + summary("death -> last new flow", last))
        print("  " + summary("death -> OFFLINE     ", offline))
        print(f"  client connections that failed: {errors}")
        _, offline, _ = results["idle"]
        print("idle (active check only; bound delay x max_retries_down + timeout = 3 s):")
        print("  " + summary("death -> OFFLINE     ", offline))
    finally:
        d.stop()
        d.cleanup()
        for b in backends:
            b.stop()
        release_ports(ports)


if __name__ == "__main__":
    main()
