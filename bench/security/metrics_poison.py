"""Issue 11 item 3: /metrics poisoned and grown through X-Amz-Target.

(a) One `POST /` with `X-Amz-Target: Evil"} 1\\` on the control Unix socket,
    then `promtool check metrics` on GET /metrics: its exit code and first
    line (1 = text format parsing error). A clean scrape is checked first.
(b) On a fresh daemon, --targets (300) requests with distinct 32 KiB targets:
    /metrics size and the daemon's VmRSS before and after.
(c) Unsigned `GET /metrics` on the TCP endpoint (credentials configured):
    status, and whether the answer names the accelerator ARN.

    python bench/security/metrics_poison.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import shutil
import subprocess

import common as c


def add_args(ap) -> None:
    ap.add_argument("--targets", type=int, default=300)
    ap.add_argument("--target-bytes", type=int, default=32 * 1024)


def promtool(text: bytes) -> str:
    exe = shutil.which("promtool")
    if exe is None:
        return "promtool-missing"
    p = subprocess.run([exe, "check", "metrics"], input=text, capture_output=True, timeout=30)
    first = (p.stdout + p.stderr).decode("utf-8", "replace").strip().splitlines()
    return f"exit{p.returncode}:{(first[0] if first else '')[:90]!r}"


def scrape(d) -> bytes:
    status, _, body = d.request("GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}")
    return body


def poke(d, target: str) -> int:
    status, _, _ = d.request("POST", "/", body=b"{}", headers={"X-Amz-Target": target,
                                                              "Content-Type": "application/x-amz-json-1.1"})
    return status


def new_daemon(args, control_port: int | None = None):
    (data_port,) = c.ports(1)
    cfg = c.single_pool_config([data_port], [c.member(c.ports(1)[0])], workers=1,
                               control=c.control_section(control_port))
    return c.daemon(args, cfg)


def main(args) -> None:
    d = new_daemon(args)
    poke(d, "GlobalAccelerator_V20180706.ListAccelerators")
    clean = promtool(scrape(d))
    status = poke(d, 'Evil"} 1\\')
    poisoned = promtool(scrape(d))
    c.result("5a metrics-escape", target=repr('Evil"} 1\\'), answer=status, promtool_clean=clean,
             promtool_after=poisoned)
    d.cleanup()

    d = new_daemon(args)
    poke(d, "GlobalAccelerator_V20180706.ListAccelerators")
    size0, rss0 = len(scrape(d)), c.proc_status_kib(d.pid)
    for i in range(args.targets):
        target = f"T{i:06d}".ljust(args.target_bytes, "x")
        poke(d, target)
    size1, rss1 = len(scrape(d)), c.proc_status_kib(d.pid)
    c.result("5b metrics-growth", targets=args.targets, target_bytes=args.target_bytes,
             metrics_bytes_before=size0, metrics_bytes_after=size1,
             rss_kib_before=rss0, rss_kib_after=rss1, rss_growth_mib=round((rss1 - rss0) / 1024, 1))
    d.cleanup()

    (control_port,) = c.ports(1)
    d = new_daemon(args, control_port)
    arn = d.config["accelerators"][0]["AcceleratorArn"]
    status, _, body = c.tcp_request(control_port, "GET", "/metrics")
    c.result("5c metrics-unsigned-tcp", status=status, bytes=len(body),
             exposes_accelerator_arn=arn.encode() in body)


if __name__ == "__main__":
    c.run("5 metrics", main, c.parse_args(__doc__, add_args, time_limit=120))
