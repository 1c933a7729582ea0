"""Shared persistence cost (issue 14, docs/cluster.md §7): a ROUND_ROBIN pool
with SOURCE_IP persistence on one flowgated, standalone and as a cluster
member (real 3-member etcd), FLOWGATED=path for the build.

- batching delay: for each new client address, the time from its first
  connection's reply until its entry is in etcd (polled every 5 ms);
- write rate: entries written per second while clients arrive back to back;
- connections/s of the pool (new client address per connection, so every
  connection makes a new persistence choice), standalone vs cluster.
Wall-clock numbers: noisy on a shared 2-core machine.

    .venv/bin/python bench/cluster/persistence.py [--clients 200] [--seconds 3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Tests" / "IntegrationTests"))
from harness import Daemon, TcpBackend, config, free_port, listener, member, pool, tcp_member_name  # noqa: E402
from harness.etcd import EtcdCluster  # noqa: E402
from harness.fleet import with_cluster  # noqa: E402


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def source(i: int) -> str:
    return f"127.{20 + i // 60000}.{(i // 250) % 240}.{1 + i % 250}"


def conn_rate(port: int, seconds: float, offset: int) -> float:
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < seconds:
        tcp_member_name(port, source=source(offset + n))
        n += 1
    return n / (time.monotonic() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    a, b = TcpBackend("a", mode="id"), TcpBackend("b", mode="id")
    etcd = EtcdCluster(3).start()
    daemons = []
    try:
        port = free_port()
        p = pool([member(a.port), member(b.port)], lb_algorithm="ROUND_ROBIN",
                 session_persistence={"type": "SOURCE_IP", "persistence_timeout": 5})
        cfg = config([listener([port], p["id"])], [p])
        solo_cfg = dict(cfg); solo_cfg["workers"] = 2
        solo = Daemon(solo_cfg); daemons.append(solo); solo.start()
        solo_rate = conn_rate(port, args.seconds, 0)
        solo.stop()
        d = Daemon(with_cluster(cfg, "pbench", "lb1", etcd.endpoints)); daemons.append(d); d.start()
        prefix = f"/flowgate/pbench/persist/{p['id']}/"
        delays = []
        for i in range(args.clients):
            src = source(100000 + i)
            tcp_member_name(port, source=src)
            t0 = time.monotonic()
            while etcd.get(prefix + src) is None:
                time.sleep(0.005)
                if time.monotonic() - t0 > 5:
                    raise SystemExit(f"{src} not in etcd within 5 s")
            delays.append((time.monotonic() - t0) * 1000)
        before = len(etcd.get_prefix(prefix))
        t0 = time.monotonic()
        cluster_rate = conn_rate(port, args.seconds, 200000)
        made = int(cluster_rate * (time.monotonic() - t0))
        deadline = time.monotonic() + 20
        while len(etcd.get_prefix(prefix)) < before + made and time.monotonic() < deadline:
            time.sleep(0.02)
        settled = time.monotonic() - t0
        written = len(etcd.get_prefix(prefix)) - before
        print(json.dumps({
            "binary": str(d.binary),
            "batching_delay_ms": {"p50": round(pct(delays, 50), 1), "p99": round(pct(delays, 99), 1), "max": round(max(delays), 1)},
            "entries_written_during_burst": written, "new_clients_during_burst": made,
            "write_rate_per_s": round(written / settled, 1), "burst_s": args.seconds, "all_written_after_s": round(settled, 2),
            "connections_per_s": {"standalone": round(solo_rate, 1), "cluster": round(cluster_rate, 1)},
        }, indent=2))
    finally:
        for dm in daemons:
            dm.stop(); dm.cleanup()
        etcd.stop(); a.stop(); b.stop()


if __name__ == "__main__":
    main()
