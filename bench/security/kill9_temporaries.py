"""Issue 11 item 5 (kill -9): state-file temporaries left behind.

--updates (100) times: an UpdatePool (PUT /v3/{project}/elb/pools/{id},
alternating lb_algorithm) is sent on the control Unix socket, and the daemon
gets SIGKILL after a random delay of 0 to --max-delay-ms (8 ms, about one
state-file write with its fsyncs); then it is started again on the same state
file. Counts the `state.json.tmp.*` files in the state directory after the
last restart, and how many of the killed updates were answered 200.

    python bench/security/kill9_temporaries.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import common as c


def add_args(ap) -> None:
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--max-delay-ms", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=11)


def main(args) -> None:
    rng = random.Random(args.seed)
    (data_port,) = c.ports(1)
    cfg = c.single_pool_config([data_port], [c.member(c.ports(1)[0])], workers=1)
    d = c.daemon(args, cfg)
    project, pool = d.config["project_id"], d.config["pools"][0]["id"]
    algos = ["LEAST_CONNECTIONS", "ROUND_ROBIN"]
    answered = failed_start = 0
    t = time.monotonic()
    for i in range(args.updates):
        result = {}

        def update() -> None:
            try:
                result["status"] = d.request("PUT", f"/v3/{project}/elb/pools/{pool}", timeout=5,
                                             body=json.dumps({"pool": {"lb_algorithm": algos[i % 2]}}))[0]
            except OSError as error:
                result["status"] = type(error).__name__
        th = threading.Thread(target=update, daemon=True)
        th.start()
        time.sleep(rng.uniform(0, args.max_delay_ms) / 1000)
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(10)
        th.join(10)
        answered += result.get("status") == 200
        try:
            d.start()
        except Exception:
            failed_start += 1
            raise
    leftovers = sorted(p.name for p in d.state_file.parent.iterdir() if p.name.startswith(d.state_file.name + ".tmp"))
    c.result("10 kill9-temporaries", updates_killed=args.updates, answered_200=answered,
             tmp_files_after_restart=len(leftovers), restart_failures=failed_start,
             example=leftovers[0] if leftovers else "-", seconds=round(time.monotonic() - t, 1))


if __name__ == "__main__":
    c.run("10 kill9-temporaries", main, c.parse_args(__doc__, add_args, time_limit=300))
