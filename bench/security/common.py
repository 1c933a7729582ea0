"""Shared helpers of the issue-11 measurements (bench/security/README.md).

Each script spawns its own flowgated (the integration harness's `Daemon`,
which puts the config, state file, control socket and logs in a fresh /tmp
directory and starts the process in its own session), on free loopback ports
reserved through the harness's port locks. Everything a script starts is
registered with `cleanup()` and stopped by PID in a `finally`, also when the
script's own time limit (SIGALRM) or a SIGTERM/SIGINT interrupts it.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import resource
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "IntegrationTests"))
from harness import (PROJECT_ID, Daemon, UnixHTTPConnection, free_port_range, member, release_ports,  # noqa: E402,F401
                     single_pool_config, tcp_listening_ports)

AWS_KEY = "AKIDFLOWGATEBENCH"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYBENCHKEY"
REGION = "us-west-2"
TARGET_PREFIX = "GlobalAccelerator_V20180706."
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class TimeLimit(Exception):
    """The script ran past its --time-limit (raised by SIGALRM)."""


class Stopped(Exception):
    """SIGTERM/SIGINT: stop and clean up."""


_cleanups: list[Callable[[], None]] = []
_reserved_ports: list[int] = []


def at_exit(fn: Callable[[], None]) -> None:
    """Run fn when the script ends, last registered first."""
    _cleanups.append(fn)


def ports(n: int = 1, proto=("tcp",)) -> list[int]:
    """n consecutive free loopback ports, reserved until the script ends."""
    got = free_port_range(n, proto)
    _reserved_ports.extend(got)
    return got


def cleanup() -> None:
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as error:  # keep cleaning up the others
            print(f"cleanup: {error!r}", file=sys.stderr)
    release_ports(_reserved_ports)
    _reserved_ports.clear()


def parse_args(doc: str, add: Callable[[argparse.ArgumentParser], None] | None = None,
               time_limit: int = 120) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flowgated", default=os.environ.get("FLOWGATED"),
                    help="flowgated binary to measure (default: $FLOWGATED)")
    ap.add_argument("--time-limit", type=int, default=time_limit,
                    help=f"seconds before the script gives up and cleans up (default {time_limit})")
    if add:
        add(ap)
    args = ap.parse_args()
    if not args.flowgated:
        ap.error("--flowgated PATH (or FLOWGATED=PATH) is required")
    args.flowgated = str(Path(args.flowgated).resolve())
    if not os.access(args.flowgated, os.X_OK):
        ap.error(f"--flowgated {args.flowgated} is not an executable file")
    return args


def run(item: str, main: Callable[[argparse.Namespace], None], args: argparse.Namespace) -> None:
    """Runs main(args) bounded by args.time_limit; prints `[item] error=...` on
    failure (and exits 1), and always cleans up."""
    def on_alarm(signum, frame):
        raise TimeLimit(f"time limit {args.time_limit} s reached")

    def on_stop(signum, frame):
        raise Stopped(f"signal {signum}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    raise_nofile()
    signal.alarm(args.time_limit)
    code = 0
    try:
        main(args)
    except (TimeLimit, Stopped, Exception) as error:
        result(item, error=repr(error)[:300])
        code = 1
    finally:
        signal.alarm(0)
        cleanup()
    sys.exit(code)


def result(item: str, **fields) -> None:
    """One result line: `[item] key=value key=value ...`."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, float):
            value = f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.0f}"
        parts.append(f"{key}={value}")
    print(f"[{item}] " + " ".join(parts), flush=True)


def raise_nofile() -> None:
    """This client opens hundreds of sockets: soft descriptor limit = hard."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- the daemon -------------------------------------------------------------------------------------------

def control_section(port: int | None, *, credentials: bool = True, allow_unsigned: bool = False) -> dict:
    section: dict = {"region": REGION}
    if port is not None:
        section["listen"] = f"127.0.0.1:{port}"
    if credentials:
        section["credentials"] = {"aws": [{"access_key_id": AWS_KEY, "secret_access_key": AWS_SECRET}]}
    if allow_unsigned:
        section["allow_unsigned"] = True
    return section


def daemon(args: argparse.Namespace, cfg, *, nofile: int | None = None, start: bool = True) -> Daemon:
    """A flowgated on cfg, stopped (SIGTERM, then SIGKILL, by PID) and its
    directory removed when the script ends. nofile: run it under
    `prlimit --nofile=N` (an exec, so the PID is the daemon's)."""
    binary = args.flowgated
    d = Daemon(cfg, binary=binary)
    if nofile is not None:
        wrapper = d.workdir / "flowgated-prlimit.sh"
        wrapper.write_text(f"#!/bin/sh\nexec prlimit --nofile={nofile}:{nofile} -- {binary} \"$@\"\n")
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        d.binary = wrapper
    at_exit(d.cleanup)
    if start:
        d.start()
    return d


def listener_arn(d: Daemon, index: int = 0) -> str:
    return d.config["accelerators"][0]["listeners"][index]["ListenerArn"]


def describe_listener(d: Daemon, arn: str) -> dict:
    """DescribeListener over the Unix socket (trusted, unsigned)."""
    status, _, body = d.request("POST", "/", body=json.dumps({"ListenerArn": arn}),
                                headers={"X-Amz-Target": TARGET_PREFIX + "DescribeListener",
                                         "Content-Type": "application/x-amz-json-1.1"})
    if status != 200:
        raise RuntimeError(f"DescribeListener answered {status}: {body[:200]!r}")
    return json.loads(body)["Listener"]


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """utime + stime per thread of pid, keyed by `name/tid`."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                text = f.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        out[f"{name}/{tid}"] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def proc_status_kib(pid: int, key: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


# -- HTTP -------------------------------------------------------------------------------------------------

def sigv4_headers(port: int, operation: str, body: bytes) -> dict[str, str]:
    """Headers botocore's SigV4Auth adds to a Global Accelerator call at
    127.0.0.1:port (what a captured boto3 request carries)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body,
                     headers={"X-Amz-Target": TARGET_PREFIX + operation,
                              "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(AWS_KEY, AWS_SECRET), "globalaccelerator", REGION).add_auth(req)
    headers = {k: v for k, v in req.headers.items()}
    headers["Host"] = f"127.0.0.1:{port}"
    return headers


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tcp_request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None,
                timeout: float = 10.0, conn: http.client.HTTPConnection | None = None) -> tuple[int, dict, bytes]:
    """One request on 127.0.0.1:port (a new connection unless conn is given):
    (status, lower-cased headers, body)."""
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body or None, headers=headers or {})
        resp = c.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        if own:
            c.close()


def unix_get(path: str, url: str, timeout: float) -> tuple[int | None, float, str]:
    """GET url on the control Unix socket: (status or None, seconds, error)."""
    t = time.monotonic()
    c = UnixHTTPConnection(path, timeout=timeout)
    try:
        c.request("GET", url)
        resp = c.getresponse()
        resp.read()
        return resp.status, time.monotonic() - t, ""
    except OSError as error:
        return None, time.monotonic() - t, type(error).__name__
    finally:
        c.close()


def python() -> str:
    return sys.executable


def start_process(argv: list[str], **kw) -> subprocess.Popen:
    """A helper process in its own session, ended by PID (SIGTERM, then
    SIGKILL) when the script ends."""
    proc = subprocess.Popen(argv, start_new_session=True, **kw)

    def stop() -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
    at_exit(stop)
    return proc


def connect(port: int, timeout: float = 2.0, host: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except OSError:
        s.close()
        raise
    return s


def peer_open(sock: socket.socket | None) -> bool:
    """True while the server has not closed or reset this connection (looks
    without waiting: nothing to read means still open)."""
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return True
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
