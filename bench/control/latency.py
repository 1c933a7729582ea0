"""Control-plane latency (issue 5): UpdatePool, and UpdateListener adding
1,000 ports, p50/p99 over N calls each, through the control Unix socket of a
spawned flowgated (debug or release build: FLOWGATED=path).

    .venv/bin/python bench/control/latency.py [--calls 200] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Tests" / "IntegrationTests"))
from harness import Daemon, TcpBackend, free_port_range, member, release_ports, single_pool_config  # noqa: E402


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    backend = TcpBackend("echo", mode="echo")
    base = free_port_range(1, ("tcp",))
    big = free_port_range(1000, ("tcp",))
    cfg = single_pool_config(base, [member(backend.port)], workers=args.workers)
    d = Daemon(cfg)
    try:
        d.start()
        pid = cfg["pools"][0]["id"]
        arn = d.config["accelerators"][0]["listeners"][0]["ListenerArn"]
        project = d.config["project_id"]
        algos = ["LEAST_CONNECTIONS", "ROUND_ROBIN"]
        pool_lat = []
        for i in range(args.calls):
            t = time.perf_counter()
            status, _, body = d.request("PUT", f"/v3/{project}/elb/pools/{pid}", body=json.dumps({"pool": {"lb_algorithm": algos[i % 2]}}))
            pool_lat.append(time.perf_counter() - t)
            assert status == 200, body
        add_lat, remove_lat = [], []
        small = [{"FromPort": base[0], "ToPort": base[0]}]
        large = small + [{"FromPort": big[0], "ToPort": big[-1]}]
        for i in range(args.calls):
            for ranges, into in ((large, add_lat), (small, remove_lat)):
                t = time.perf_counter()
                status, _, body = d.request("POST", "/", body=json.dumps({"ListenerArn": arn, "PortRanges": ranges}),
                                            headers={"X-Amz-Target": "GlobalAccelerator_V20180706.UpdateListener"})
                into.append(time.perf_counter() - t)
                assert status == 200, body
        for name, lat in (("UpdatePool", pool_lat), ("UpdateListener +1000 ports", add_lat), ("UpdateListener -1000 ports", remove_lat)):
            print(f"{name}: n={len(lat)} p50={pct(lat, 50) * 1000:.2f} ms p99={pct(lat, 99) * 1000:.2f} ms "
                  f"mean={statistics.mean(lat) * 1000:.2f} ms max={max(lat) * 1000:.2f} ms")
    finally:
        d.cleanup()
        backend.stop()
        release_ports(base + big)


if __name__ == "__main__":
    main()
