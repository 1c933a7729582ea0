"""Fleet convergence and client cost (issue 14, docs/cluster.md §8).

Starts a real 3-member etcd (Tests/IntegrationTests/harness/etcd.py) and two
flowgated (debug or release build: FLOWGATED=path) with the same cluster.name,
then:
- N member-weight updates through instance 1's ELB API; for each, the time
  from instance 1's 200 (etcd committed it and instance 1 applied it) until
  instance 2 describes it (its snapshot is committed on its workers: Describe
  reads the applied config), polled back to back; p50/p99/max;
- the descriptors, threads and RSS a cluster member costs over the same
  config run standalone (both idle, after the updates).

    .venv/bin/python bench/cluster/convergence.py [--updates 200]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Tests" / "IntegrationTests"))
from harness import Daemon, TcpBackend, free_port, member, single_pool_config  # noqa: E402
from harness.etcd import EtcdCluster  # noqa: E402
from harness.fleet import elb, with_cluster  # noqa: E402


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def proc_cost(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": int(fields["Threads"].strip()),
            "rss_kib": int(fields["VmRSS"].split()[0])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=200)
    args = ap.parse_args()
    backend = TcpBackend("a", mode="id")
    etcd = EtcdCluster(3).start()
    daemons: list[Daemon] = []
    try:
        cfg = single_pool_config([free_port()], [member(backend.port)])
        pid = cfg["pools"][0]["id"]
        d1 = Daemon(with_cluster(cfg, "bench", "lb1", etcd.endpoints)); daemons.append(d1); d1.start()
        d2 = Daemon(with_cluster(cfg, "bench", "lb2", etcd.endpoints)); daemons.append(d2); d2.start()
        mid = elb(d1, "GET", f"/pools/{pid}/members")[1]["members"][0]["id"]
        ack_ms, converge_ms = [], []
        for i in range(args.updates):
            weight = 2 + i % 50
            t0 = time.monotonic()
            status, body = elb(d1, "PUT", f"/pools/{pid}/members/{mid}", {"member": {"weight": weight}})
            t1 = time.monotonic()
            assert status == 200, body
            while elb(d2, "GET", f"/pools/{pid}/members/{mid}")[1]["member"]["weight"] != weight:
                if time.monotonic() - t1 > 10:
                    raise SystemExit(f"update {i} not on lb2 within 10 s")
            t2 = time.monotonic()
            ack_ms.append((t1 - t0) * 1000)
            converge_ms.append((t2 - t1) * 1000)
        time.sleep(1)
        cluster_cost = proc_cost(d2.pid)
        solo_cfg = dict(cfg); solo_cfg["workers"] = 2  # with_cluster's worker count, no cluster
        solo = Daemon(solo_cfg); daemons.append(solo); solo.start()
        time.sleep(1)
        solo_cost = proc_cost(solo.pid)
        print(json.dumps({
            "updates": args.updates,
            "binary": str(d1.binary),
            "ack_on_1_ms": {"p50": round(pct(ack_ms, 50), 2), "p99": round(pct(ack_ms, 99), 2), "max": round(max(ack_ms), 2)},
            "ack_to_in_force_on_2_ms": {"p50": round(pct(converge_ms, 50), 2), "p99": round(pct(converge_ms, 99), 2),
                                        "max": round(max(converge_ms), 2)},
            "cluster_member": cluster_cost, "standalone": solo_cost,
            "cluster_client_cost": {k: cluster_cost[k] - solo_cost[k] for k in cluster_cost},
        }, indent=2))
    finally:
        for d in daemons:
            d.stop(); d.cleanup()
        etcd.stop()
        backend.stop()


if __name__ == "__main__":
    main()
