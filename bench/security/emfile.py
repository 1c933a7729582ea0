"""Issue 11 item 2 (EMFILE): the control listener when descriptors run out.

The daemon runs under `prlimit --nofile=400` (the data plane keeps 256
descriptors in reserve at start, so much less does not start) with a TCP
control endpoint; --connections (550) clients connect to that endpoint and
dribble one byte of a request head every 0.5 s, so the daemon's descriptors
are exhausted and further connections wait in the listen backlog. Over
--seconds (5 s) it reads the daemon's CPU time (utime+stime of all threads,
/proc/PID/stat) and the growth of its stderr file: CPU % of one core and
bytes/s written to stderr, idle (3 s before the attack) and at EMFILE, the
busiest thread (name/tid: % of a core) and the machine's 1-minute load.

    python bench/security/emfile.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import os
import time

import common as c
from dribblers import Dribblers


def add_args(ap) -> None:
    ap.add_argument("--nofile", type=int, default=400)
    ap.add_argument("--connections", type=int, default=550)
    ap.add_argument("--seconds", type=float, default=5.0)


def sample(d, seconds: float) -> tuple[float, float, int, str]:
    """(CPU % of one core, stderr bytes/s, stderr size, busiest thread and its %) over `seconds`."""
    cpu0, size0, t0 = c.proc_cpu_seconds(d.pid), os.path.getsize(d.stderr_path), time.monotonic()
    threads0 = c.thread_cpu_seconds(d.pid)
    time.sleep(seconds)
    cpu1, size1, t1 = c.proc_cpu_seconds(d.pid), os.path.getsize(d.stderr_path), time.monotonic()
    threads1 = c.thread_cpu_seconds(d.pid)
    busy = max(threads1, key=lambda k: threads1[k] - threads0.get(k, 0.0))
    busy_pct = 100 * (threads1[busy] - threads0.get(busy, 0.0)) / (t1 - t0)
    return 100 * (cpu1 - cpu0) / (t1 - t0), (size1 - size0) / (t1 - t0), size1, f"{busy}:{busy_pct:.0f}%"


def main(args) -> None:
    (data_port,) = c.ports(1)
    (control_port,) = c.ports(1)
    cfg = c.single_pool_config([data_port], [c.member(c.ports(1)[0])], workers=2,
                               control=c.control_section(control_port))
    d = c.daemon(args, cfg, nofile=args.nofile)
    time.sleep(1.0)
    idle_cpu, idle_bps, _, _ = sample(d, 3.0)
    attack = Dribblers(control_port, args.connections)
    c.at_exit(attack.stop)
    attack.start()
    time.sleep(2.0)
    fds = c.open_fds(d.pid)
    cpu, bps, size, busiest = sample(d, args.seconds)
    load = os.getloadavg()[0]
    attack.stop()
    with open(d.stderr_path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    emfile_lines = sum(1 for line in text.splitlines() if "Too many open files" in line)
    example = next((line for line in text.splitlines() if "Too many open files" in line), "-")
    c.result("3 emfile", nofile=args.nofile, connections=args.connections, established=attack.established(),
             daemon_fds=fds, cpu_pct_idle=round(idle_cpu, 1), cpu_pct_at_emfile=round(cpu, 1),
             busiest_thread=busiest, loadavg_1m=round(load, 1),
             stderr_bytes_per_s_idle=round(idle_bps), stderr_bytes_per_s_at_emfile=round(bps),
             stderr_total_bytes=size, emfile_log_lines=emfile_lines, example=repr(example[:100]))


if __name__ == "__main__":
    c.run("3 emfile", main, c.parse_args(__doc__, add_args, time_limit=90))
