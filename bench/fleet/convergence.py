"""Fleet convergence (issue 14): time from an update's acknowledgement on
instance 1 to it being in force on every other instance, p50/p99 over N
updates, on the network-namespace bed of Tests/IntegrationTests/harness/fleet_netns.py
with a 3-member etcd cluster (harness/etcd.py, Debian's etcd-server) in its own
namespace. Needs root, and a flowgated that takes the `cluster` section.

    /work/main/.venv/bin/python bench/fleet/convergence.py [--updates 200] [--instances 3]
        [--by describe|traffic] [--json out.json]

--by describe: UpdatePool `description` = "u<i>" through instance 1; in force on
    instance k when its ShowPool answers that description (its applied state).
--by traffic: UpdateMember weight of member m3 toggled 0/1 (ROUND_ROBIN pool of
    m1..m3); in force on instance k when 3 connections made inside its namespace
    reach exactly the members the new weight allows.
--standalone: no `cluster` section; the script itself repeats each update on the
    other instances right after the acknowledgement: a check of this script on
    a daemon without the cluster, and the floor of the measuring method.
Each other instance is polled by its own thread from the moment of the
acknowledgement, so one instance's time does not delay another's. Wall-clock
numbers: noisy on a shared machine (say so when quoting them).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "Tests" / "IntegrationTests"))
from harness import DaemonError, flowgated_bin  # noqa: E402
from harness.etcd import EtcdCluster  # noqa: E402
from harness.fleet_netns import (FLEET_POOL, FleetBed, InNetns, cluster_section, elb, fleet_config,  # noqa: E402
                                 local_members)

POLL_TIMEOUT = 10.0


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summary(values):
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "p50_ms": round(pct(ms, 50), 2), "p99_ms": round(pct(ms, 99), 2),
            "max_ms": round(max(ms), 2), "mean_ms": round(statistics.fmean(ms), 2)}


def poll(check, since: float, out: list, index: int) -> None:
    deadline = since + POLL_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if check():
                out[index] = time.monotonic() - since
                return
        except (OSError, AssertionError, KeyError, ValueError):
            pass
        time.sleep(0.001)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--updates", type=int, default=200)
    ap.add_argument("--instances", type=int, default=3, choices=(2, 3))
    ap.add_argument("--by", choices=("describe", "traffic"), default="describe")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--standalone", action="store_true", help="no cluster: the script repeats each update itself")
    args = ap.parse_args()

    bed = FleetBed(instances=args.instances, clients=1, backends=3, etcd_members=1)
    etcd = None
    try:
        bed.create()
        etcd = InNetns(bed.etcd.call(lambda: EtcdCluster(3, host=bed.etcd_addresses[0]).start()), bed.etcd)
        backends = bed.start_backends("id")
        for inst in bed.instances:
            extra = {} if args.standalone else {"cluster": cluster_section("bench", f"lb{inst.index}", etcd.endpoints)}
            cfg = fleet_config(backends, lb_algorithm="ROUND_ROBIN", **extra)
            inst.start(cfg, flowgated_bin())
        first, others = bed.instances[0], bed.instances[1:]
        m3 = None
        if args.by == "traffic":
            status, body = elb(first.daemon, "GET", f"pools/{FLEET_POOL}/members")
            m3 = next(m["id"] for m in body["members"] if m["name"] == "m3")

        acks, times, lost = [], {i.index: [] for i in others}, 0
        for n in range(args.updates):
            if args.by == "describe":
                value = f"u{n}"
                request = ("PUT", f"pools/{FLEET_POOL}", {"pool": {"description": value}})

                def check(inst, value=value):
                    status, body = elb(inst.daemon, "GET", f"pools/{FLEET_POOL}")
                    return status == 200 and body["pool"]["description"] == value
            else:
                weight = n % 2   # 0, 1, 0, ...: m3 out, in, out
                request = ("PUT", f"pools/{FLEET_POOL}/members/{m3}", {"member": {"weight": weight}})
                want = {"m1", "m2", "m3"} if weight else {"m1", "m2"}

                def check(inst, want=want):
                    return set(local_members(inst, 3)) == want
            t0 = time.monotonic()
            status, body = elb(first.daemon, *request)
            acked = time.monotonic()
            if status != 200:
                raise SystemExit(f"update {n} through instance 1 answered {status}: {body}")
            acks.append(acked - t0)
            got: list = [None] * len(others)
            threads = [threading.Thread(target=poll, args=(lambda i=i: check(i), acked, got, k))
                       for k, i in enumerate(others)]
            for t in threads:
                t.start()
            if args.standalone:
                for inst in others:
                    elb(inst.daemon, *request)
            for t in threads:
                t.join()
            for inst, t in zip(others, got):
                if t is None:
                    lost += 1
                else:
                    times[inst.index].append(t)

        allv = [t for v in times.values() for t in v]
        result = {"updates": args.updates, "by": args.by, "instances": args.instances, "standalone": args.standalone,
                  "ack_on_instance_1": summary(acks), "in_force_on_others": summary(allv),
                  "per_instance": {f"lb{i}": summary(v) for i, v in times.items() if v},
                  "not_in_force_within_s": {"timeout": POLL_TIMEOUT, "count": lost}}
        print(json.dumps(result, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        return 0 if lost == 0 else 1
    except DaemonError as e:
        print(f"flowgated did not start with a `cluster` section (issue 14):\n{str(e)[-2000:]}", file=sys.stderr)
        return 2
    finally:
        if etcd is not None:
            etcd.stop()
        bed.destroy()


if __name__ == "__main__":
    sys.exit(main())
