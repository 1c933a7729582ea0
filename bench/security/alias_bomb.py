"""Issue 11 item 4: YAML alias amplification in the config loader.

For each --variants entry MxA it writes a config whose `pools:` is a flow
sequence holding one pool of M members, anchored (`&p`), followed by A
aliases of it (`*p, *p, ...`): 1000x1000 is about 45 KB, 1000x1500 about
47 KB, 1000x15000 about 101 KB (the sizes of the issue). Then it times
`flowgated --config FILE --check-config` under `/usr/bin/time -v` inside
`timeout --foreground -s KILL 60` (--foreground, so that `time` still gets
the killed child's usage): exit status, wall seconds, maximum RSS, and the
first line of the daemon's output.

    python bench/security/alias_bomb.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import common as c


def add_args(ap) -> None:
    ap.add_argument("--variants", default="1000x1000,1000x1500,1000x15000",
                    help="MEMBERSxALIASES, comma-separated")
    ap.add_argument("--timeout", type=int, default=60)


def bomb(members: int, aliases: int) -> str:
    acc = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81"
    ms = ", ".join(f"{{address: 127.0.0.1, protocol_port: {1 + i % 60000}}}" for i in range(members))
    return (f"project_id: {c.PROJECT_ID}\n"
            "accelerators:\n"
            f"  - AcceleratorArn: {acc}\n"
            "    listeners:\n"
            f"      - {{ListenerArn: {acc}/listener/0a1b2c3d, PortRanges: [{{FromPort: 18000, ToPort: 18000}}], "
            "Protocol: TCP, pool_id: p}\n"
            f"pools: [&p {{name: p, protocol: TCP, lb_algorithm: ROUND_ROBIN, members: [{ms}]}}"
            + ", *p" * aliases + "]\n")


def measure(args, path: Path) -> dict:
    argv = ["/usr/bin/time", "-v", "timeout", "--foreground", "-s", "KILL", str(args.timeout),
            args.flowgated, "--config", str(path), "--check-config"]
    proc = c.start_process(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=args.timeout + 30)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", err)
    status = re.search(r"Exit status: (\d+)", err)
    seconds = 0.0
    if wall:
        for part in wall.group(1).split(":"):
            seconds = seconds * 60 + float(part)
    lines = [l for l in (out + err).splitlines() if l.strip() and not l.startswith("\t") and "Command" not in l]
    code = int(status.group(1)) if status else proc.returncode
    return {"exit": code if code != 137 else "137(killed-at-timeout)", "seconds": round(seconds, 2),
            "max_rss_mib": round(int(rss.group(1)) / 1024, 1) if rss else "?",
            "output": repr((lines[0] if lines else "")[:100])}


def main(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fg-bomb-", dir="/tmp"))
    c.at_exit(lambda: shutil.rmtree(tmp, ignore_errors=True))
    for variant in args.variants.split(","):
        members, aliases = (int(x) for x in variant.lower().split("x"))
        text = bomb(members, aliases)
        path = tmp / f"bomb-{variant}.yaml"
        path.write_text(text)
        r = measure(args, path)
        c.result(f"6 alias-bomb-{len(text) // 1000}KB", file_bytes=len(text), members=members, aliases=aliases,
                 expanded_members=members * (aliases + 1), timeout_s=args.timeout, **r)


if __name__ == "__main__":
    a = c.parse_args(__doc__, add_args, time_limit=400)
    c.run("6 alias-bomb", main, a)
