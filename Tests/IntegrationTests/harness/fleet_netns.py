"""A real multi-instance test bed in network namespaces (issue 14, docs/fleet-testing.md).

    client ──┐                       ┌── instance 1 (flowgated, VIP on lo)
             │                       ├── instance 2 (flowgated, VIP on lo)
    backend ─┼──────── router ───────┼── instance 3 (flowgated, VIP on lo)
             │   ECMP: VIP/32 over a resilient nexthop group, L4 hash
    etcd ────┘  (optional namespace for an etcd cluster)

Every address is from 198.18.0.0/15 and lives only inside the bed's namespaces;
the root namespace gets nothing. Namespaces are named `fgfleet-<pid>-<seq>-<role>`:
`FleetBed.destroy()` removes them (the `fleet_bed` fixture calls it also when the
test fails), and every new bed first removes the namespaces of beds whose
creating process is gone (a crashed or killed earlier run), killing by PID the
processes still inside them (only ever processes this harness started there).

Processes run inside a namespace through `nsenter --net=...` and `exec`, so the
PID a test holds is the program's own (kill -9 hits flowgated, not a wrapper).
Python sockets are made inside a namespace by a thread that entered it with
setns(2): a socket belongs to the namespace it was created in, whatever thread
uses it later, so backends and clients run in this process.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import pytest

from .backends import TcpBackend
from .clients import recv_line, tcp_connect
from .daemon import Daemon, log_fields

PREFIX = "fgfleet-"
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000

VIP = "198.19.0.10"                 # on every instance's lo
CLIENT_NET = "198.18.100"           # client source addresses .1 .. .N (/32 on the client's lo)
BACKEND_NET = "198.18.200"          # backend addresses .1 .. .N (/32 on the backend's lo)
ETCD_NET = "198.18.210"             # etcd member addresses .1 .. .N (/32 on the etcd namespace's lo)
GROUP_ID = 100                      # the router's nexthop group; instance i is nexthop i
DEFAULT_BUCKETS = 64

_seq = 0
_seq_lock = threading.Lock()
_libc = ctypes.CDLL(None, use_errno=True)


def _sh(cmd: Sequence[str], check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    return p


def missing_prerequisites() -> list[str]:
    """What this machine lacks for a bed, as sentences (empty: all there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("network namespaces need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            missing.append(f"`{tool}` is not installed (iproute2 / util-linux)")
    if not missing and "resilient" not in _sh(["ip", "nexthop", "help"], check=False).stderr:
        missing.append("this iproute2 has no resilient nexthop groups (`ip nexthop help` lists no `type resilient`;"
                       " Linux and iproute2 5.13 or later are needed)")
    return missing


class Netns:
    """One named network namespace."""

    def __init__(self, name: str):
        self.name = name
        self.path = str(NETNS_DIR / name)

    def __repr__(self) -> str:
        return f"Netns({self.name!r})"

    # -- commands ----------------------------------------------------------
    def ip(self, *args: str, check: bool = True) -> str:
        return _sh(["ip", "-n", self.name, *args], check=check).stdout

    def command(self, cmd: Sequence[str]) -> list[str]:
        """`cmd` as run inside this namespace (nsenter execs it: same PID)."""
        return ["nsenter", f"--net={self.path}", "--", *cmd]

    def run(self, cmd: Sequence[str], check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
        return _sh(self.command(cmd), check=check, timeout=timeout)

    def popen(self, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        return subprocess.Popen(self.command(cmd), **kwargs)

    def sysctl(self, key: str, value: str | int) -> None:
        # /proc/sys/net is the writer's namespace's: write it from inside.
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])

    def wrapper(self, binary: str | os.PathLike, directory: Path) -> Path:
        """An executable script that runs `binary` (with its arguments) in this
        namespace, exec'ing all the way down, for harness classes that take a
        binary path (Daemon)."""
        path = directory / f"{Path(binary).name}-in-{self.name}"
        path.write_text(f'#!/bin/sh\nexec nsenter --net={self.path} -- {binary} "$@"\n')
        path.chmod(0o755)
        return path

    def pids(self) -> list[int]:
        out = _sh(["ip", "netns", "pids", self.name], check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    # -- in-process sockets --------------------------------------------------
    def enter(self) -> None:
        """Move the calling thread into this namespace (for a thread pool's
        initializer; never call it on a thread that must stay in the root)."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns({self.path}): {os.strerror(err)}")
        finally:
            os.close(fd)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """fn(*args) on a fresh thread inside this namespace; its result or exception."""
        box: dict[str, Any] = {}

        def body() -> None:
            try:
                self.enter()
                box["value"] = fn(*args, **kwargs)
            except BaseException as e:  # re-raised on the caller's thread
                box["error"] = e

        t = threading.Thread(target=body, name=f"in-{self.name}", daemon=True)
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def executor(self, workers: int) -> ThreadPoolExecutor:
        """A thread pool whose threads live in this namespace."""
        return ThreadPoolExecutor(max_workers=workers, initializer=self.enter, thread_name_prefix=self.name)

    def connect(self, host: str, port: int, source: str | None = None, timeout: float = 5.0) -> socket.socket:
        """A TCP connection made from inside this namespace."""
        def make() -> socket.socket:
            return tcp_connect(port, host=host, source=source, timeout=timeout)
        return self.call(make)


class Instance:
    """One flowgated of the fleet: its namespace, its link address and, once
    started, its Daemon (harness/daemon.py) whose stderr holds the connection log."""

    def __init__(self, bed: "FleetBed", index: int):
        self.bed = bed
        self.index = index                      # 1-based, also its nexthop id
        self.ns = Netns(bed.ns_name(f"i{index}"))
        self.address = f"198.18.1.{4 * index + 2}"
        self.router_address = f"198.18.1.{4 * index + 1}"
        self.daemon: Daemon | None = None

    def __repr__(self) -> str:
        return f"Instance({self.index}, {self.address}, daemon={self.daemon!r})"

    @property
    def nexthop_id(self) -> int:
        return self.index

    @property
    def pid(self) -> int:
        assert self.daemon is not None, "instance not started"
        return self.daemon.pid

    def start(self, config: Mapping[str, Any] | str, binary: str | os.PathLike, wait_ready: bool = True,
              **kwargs: Any) -> Daemon:
        """Start flowgated inside the namespace on `config` (Daemon semantics:
        its own state file and control socket, which the test reaches from the
        root namespace since Unix socket paths are not per network namespace)."""
        if self.daemon is None:
            self.daemon = Daemon(config, binary=self.ns.wrapper(binary, self.bed.workdir),
                                 workdir=self.bed.workdir / f"i{self.index}", **kwargs)
        else:
            self.daemon.write_config(config)
        self.daemon.start(wait_ready=wait_ready)
        return self.daemon

    def kill9(self) -> int:
        """SIGKILL by PID (the daemon's own), then reap; returns the exit code."""
        assert self.daemon is not None
        return self.daemon.kill9()

    def flows_opened(self) -> list[dict[str, str]]:
        """The `flow_opened` lines of its connection log (listeners with
        `connection_log: true`), as field dicts, in order."""
        if self.daemon is None:
            return []
        return [log_fields(l) for l in self.daemon.log_lines("flow_opened")]


class InNetns:
    """Runs every method of `target` on a thread inside `ns`: what it
    connects to and what it spawns (Popen forks from the calling thread, so
    the child starts in that thread's namespace) is inside. Plain attributes
    are read as they are. Used to drive harness/etcd.py's EtcdCluster (its
    members, health checks and v3 gateway calls) inside the bed's etcd
    namespace, which the root namespace cannot reach."""

    def __init__(self, target: Any, ns: Netns):
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_ns", ns)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value
        return lambda *a, **kw: self._ns.call(value, *a, **kw)

    def __repr__(self) -> str:
        return f"InNetns({self._target!r}, {self._ns.name})"


class FleetBed:
    """The whole bed. `create()` builds it (cleaning up leftovers first),
    `destroy()` removes it, idempotently; use it as a context manager or
    through the `fleet_bed` fixture."""

    def __init__(self, instances: int = 3, clients: int = 100, backends: int = 3, group_type: str = "resilient",
                 buckets: int = DEFAULT_BUCKETS, hash_policy: int = 1, etcd_members: int = 0):
        if not 1 <= instances <= 8:
            raise ValueError(f"instances must be in 1..8, not {instances}")
        if not 1 <= clients <= 250 or not 1 <= backends <= 250 or not 0 <= etcd_members <= 250:
            raise ValueError("clients and backends must be in 1..250, etcd_members in 0..250")
        if group_type not in ("resilient", "mpath"):
            raise ValueError(f"group_type must be resilient or mpath, not {group_type!r}")
        global _seq
        with _seq_lock:
            _seq += 1
            self.tag = f"{PREFIX}{os.getpid()}-{_seq}"
        self.group_type = group_type
        self.buckets = buckets
        self.hash_policy = hash_policy
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.tag}-", dir="/tmp"))
        self.router = Netns(self.ns_name("r"))
        self.client = Netns(self.ns_name("c"))
        self.backend = Netns(self.ns_name("b"))
        self.etcd = Netns(self.ns_name("e")) if etcd_members else None
        self.instances = [Instance(self, i) for i in range(1, instances + 1)]
        self.client_addresses = [f"{CLIENT_NET}.{i}" for i in range(1, clients + 1)]
        self.backend_addresses = [f"{BACKEND_NET}.{i}" for i in range(1, backends + 1)]
        self.etcd_addresses = [f"{ETCD_NET}.{i}" for i in range(1, etcd_members + 1)]
        self.vip = VIP
        self._backends: list[TcpBackend] = []
        self._procs: list[subprocess.Popen] = []
        self._in_group = [i.index for i in self.instances]

    def ns_name(self, role: str) -> str:
        return f"{self.tag}-{role}"

    @property
    def namespaces(self) -> list[Netns]:
        return [self.router, self.client, self.backend, *([self.etcd] if self.etcd else []),
                *(i.ns for i in self.instances)]

    def __enter__(self) -> "FleetBed":
        return self.create()

    def __exit__(self, *exc: Any) -> None:
        self.destroy()

    # -- building ------------------------------------------------------------
    def create(self) -> "FleetBed":
        missing = missing_prerequisites()
        if missing:
            raise RuntimeError("cannot build the fleet bed: " + "; ".join(missing))
        clean_leftovers()
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise
        return self

    def _build(self) -> None:
        for ns in self.namespaces:
            _sh(["ip", "netns", "add", ns.name])
            ns.ip("link", "set", "lo", "up")
        r = self.router
        r.sysctl("net.ipv4.ip_forward", 1)
        # L4 hash: the 5-tuple picks the nexthop, so the many connections of
        # one client (or of many clients behind one NAT address) spread over
        # every instance, and an instance's share is its share of buckets.
        r.sysctl("net.ipv4.fib_multipath_hash_policy", self.hash_policy)
        for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
            r.sysctl(key, 0)   # replies from the VIP come back over any instance link

        def link(peer: Netns, router_dev: str, router_addr: str, peer_addr: str) -> None:
            _sh(["ip", "link", "add", "name", router_dev, "netns", r.name, "type", "veth",
                 "peer", "name", "eth0", "netns", peer.name])
            r.ip("addr", "add", f"{router_addr}/30", "dev", router_dev)
            r.ip("link", "set", router_dev, "up")
            peer.ip("addr", "add", f"{peer_addr}/30", "dev", "eth0")
            peer.ip("link", "set", "eth0", "up")
            peer.ip("route", "add", "default", "via", router_addr)

        for inst in self.instances:
            link(inst.ns, f"to-i{inst.index}", inst.router_address, inst.address)
            inst.ns.ip("addr", "add", f"{self.vip}/32", "dev", "lo")
            r.ip("nexthop", "add", "id", str(inst.nexthop_id), "via", inst.address, "dev", f"to-i{inst.index}")
        link(self.client, "to-c", "198.18.2.1", "198.18.2.2")
        link(self.backend, "to-b", "198.18.3.1", "198.18.3.2")
        r.ip("route", "add", f"{CLIENT_NET}.0/24", "via", "198.18.2.2")
        r.ip("route", "add", f"{BACKEND_NET}.0/24", "via", "198.18.3.2")
        self._add_addresses(self.client, self.client_addresses)
        self._add_addresses(self.backend, self.backend_addresses)
        if self.etcd is not None:
            link(self.etcd, "to-e", "198.18.4.1", "198.18.4.2")
            r.ip("route", "add", f"{ETCD_NET}.0/24", "via", "198.18.4.2")
            self._add_addresses(self.etcd, self.etcd_addresses)
        r.ip("nexthop", "add", *self._group_args(self._in_group))
        r.ip("route", "add", f"{self.vip}/32", "nhid", str(GROUP_ID))

    @staticmethod
    def _add_addresses(ns: Netns, addresses: Iterable[str]) -> None:
        batch = "".join(f"address add {a}/32 dev lo\n" for a in addresses)
        if batch:
            p = subprocess.run(["ip", "-n", ns.name, "-batch", "-"], input=batch, capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(f"adding addresses in {ns.name}: {p.stderr.strip()}")

    def _group_args(self, members: Sequence[int]) -> list[str]:
        args = ["id", str(GROUP_ID), "group", "/".join(str(m) for m in members)]
        if self.group_type == "resilient":
            args += ["type", "resilient", "buckets", str(self.buckets)]
        return args

    # -- the router ------------------------------------------------------------
    def group_command(self, members: Sequence[int]) -> list[str]:
        """The `ip nexthop replace` command that sets the group to `members`."""
        return ["ip", "-n", self.router.name, "nexthop", "replace", *self._group_args(members)]

    def withdraw(self, instance: Instance) -> None:
        """Take an instance out of the ECMP group, as a routing daemon does
        when its BGP session or health check fails. With a resilient group only
        its buckets move; with a hash-threshold (mpath) group every boundary shifts."""
        remaining = [i for i in self._in_group if i != instance.index]
        if not remaining:
            raise ValueError("cannot withdraw the last instance of the group")
        _sh(self.group_command(remaining))
        self._in_group = remaining

    def restore(self, instance: Instance) -> None:
        """Put a withdrawn instance back into the group."""
        if instance.index not in self._in_group:
            self._in_group = sorted([*self._in_group, instance.index])
            _sh(self.group_command(self._in_group))

    def bucket_map(self) -> dict[int, int]:
        """Resilient group: bucket index -> nexthop id (= instance index)."""
        out = self.router.ip("nexthop", "bucket", "list", "id", str(GROUP_ID))
        pairs = re.findall(r"index (\d+) .*?nhid (\d+)", out)
        return {int(i): int(n) for i, n in pairs}

    # -- processes -------------------------------------------------------------
    def start_instances(self, config: Mapping[str, Any] | str | Callable[[Instance], Any],
                        binary: str | os.PathLike, **kwargs: Any) -> list[Daemon]:
        """Start every instance (concurrently: each debug build takes ~1 s to
        come up). `config` is one config for all, or a function of the instance."""
        def one(inst: Instance) -> Daemon:
            cfg = config(inst) if callable(config) else config
            return inst.start(cfg, binary, **kwargs)
        with ThreadPoolExecutor(len(self.instances)) as pool:
            return list(pool.map(one, self.instances))

    def start_backends(self, mode: str = "id", names: Sequence[str] | None = None, port: int = 8080) -> list[TcpBackend]:
        """One TcpBackend per backend address, listening inside the backend
        namespace (harness/backends.py: mode `id` answers its name then echoes)."""
        names = list(names or [f"m{i}" for i in range(1, len(self.backend_addresses) + 1)])
        made = [self.backend.call(TcpBackend, n, mode=mode, port=port, host=a)
                for n, a in zip(names, self.backend_addresses)]
        self._backends.extend(made)
        return made

    def popen(self, ns: Netns, cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """A process inside `ns` that destroy() kills by PID if still running."""
        p = ns.popen(cmd, **kwargs)
        self._procs.append(p)
        return p

    def start_etcd(self, factory: Callable[..., Any], size: int = 3) -> Any:
        """An etcd cluster inside the etcd namespace (the bed needs
        etcd_members >= 1): `factory` is harness/etcd.py's `etcd_cluster`
        fixture value; every member listens on the first etcd address.
        Returns the cluster wrapped in InNetns."""
        assert self.etcd is not None and self.etcd_addresses, "FleetBed(etcd_members=1) makes the etcd namespace"
        return InNetns(self.etcd.call(factory, size, host=self.etcd_addresses[0]), self.etcd)

    # -- observing flows -----------------------------------------------------
    def served_by(self) -> dict[str, int]:
        """"client_ip:port" -> index of the instance whose connection log
        opened that flow (the latest one when a client port was reused)."""
        out: dict[str, int] = {}
        for inst in self.instances:
            for f in inst.flows_opened():
                if "client" in f:
                    out[f["client"]] = inst.index
        return out

    def wait_served(self, flows: Iterable[str], timeout: float = 5.0) -> dict[str, int]:
        """served_by() once every flow in `flows` ("ip:port") is logged."""
        wanted = set(flows)
        deadline = time.monotonic() + timeout
        while True:
            seen = self.served_by()
            if wanted <= seen.keys() or time.monotonic() > deadline:
                return seen
            time.sleep(0.05)

    # -- teardown --------------------------------------------------------------
    def stop_instances(self) -> None:
        """SIGTERM every running instance at once (each may drain for up to
        Daemon's grace period before SIGKILL). Never raises."""
        def stop(inst: Instance) -> None:
            if inst.daemon is not None:
                try:
                    inst.daemon.stop()
                except Exception:
                    pass
        with ThreadPoolExecutor(len(self.instances)) as pool:
            list(pool.map(stop, self.instances))

    def destroy(self) -> None:
        """Stop instances, processes and backends, delete the namespaces and
        the work directory. Never raises; safe to call twice."""
        self.stop_instances()
        for inst in self.instances:
            if inst.daemon is not None:
                try:
                    inst.daemon.cleanup()
                except Exception:
                    pass
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for b in self._backends:
            b.stop()
        self._backends.clear()
        for ns in self.namespaces:
            _remove_namespace(ns)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _remove_namespace(ns: Netns) -> None:
    if not Path(ns.path).exists():
        return
    for pid in ns.pids():
        # Only processes this harness started in its own namespaces are there.
        if pid != os.getpid():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    _sh(["ip", "netns", "del", ns.name], check=False)


def _owner_alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"python" in cmdline or b"pytest" in cmdline


def clean_leftovers() -> list[str]:
    """Remove namespaces and work directories of beds whose creating process
    is gone. Returns the namespace names removed."""
    removed = []
    names = [n.split()[0] for n in _sh(["ip", "netns", "list"], check=False).stdout.splitlines() if n.strip()]
    for name in names:
        m = re.match(rf"{re.escape(PREFIX)}(\d+)-\d+-", name)
        if m and not _owner_alive(int(m.group(1))):
            _remove_namespace(Netns(name))
            removed.append(name)
    for d in Path("/tmp").glob(f"{PREFIX}*"):
        m = re.match(rf"{re.escape(PREFIX)}(\d+)-", d.name)
        if m and not _owner_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)
    return removed


# -- clients -------------------------------------------------------------------

class HeldConnection:
    """A client connection kept open through the VIP: it read its member's
    name; exchange() sends bytes and checks the echo."""

    def __init__(self, sock: socket.socket, source: str):
        self.sock = sock
        self.source = source
        self.flow = f"{source}:{sock.getsockname()[1]}"
        self.member = recv_line(sock).decode()
        self.sent = 0

    def exchange(self, data: bytes, timeout: float = 5.0) -> bool:
        """Send `data` and read its echo; False when the connection was cut
        (EOF, reset, timeout or different bytes)."""
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(data)
            got = bytearray()
            while len(got) < len(data):
                chunk = self.sock.recv(len(data) - len(got))
                if not chunk:
                    return False
                got += chunk
        except OSError:
            return False
        self.sent += len(data)
        return bytes(got) == data

    def close(self) -> None:
        self.sock.close()


def member_of_new_connection(host: str, port: int, source: str, payload: bytes = b"",
                             timeout: float = 5.0) -> tuple[str, str, bool]:
    """Runs on a thread inside the client namespace (Netns.executor): connect
    from `source`, read the member's name, exchange `payload`, close.
    Returns (flow "ip:port", member name, echo matched)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.bind((source, 0))
        s.connect((host, port))
        flow = f"{source}:{s.getsockname()[1]}"
        name = recv_line(s).decode()
        ok = True
        if payload:
            s.sendall(payload)
            got = bytearray()
            while len(got) < len(payload):
                chunk = s.recv(len(payload) - len(got))
                if not chunk:
                    break
                got += chunk
            ok = bytes(got) == payload
        return flow, name, ok


@pytest.fixture
def fleet_bed():
    """fleet_bed(instances=3, clients=100, backends=3, group_type="resilient", ...) -> a created FleetBed,
    destroyed at teardown (also when the test fails); each instance's stderr tail is printed for a failure."""
    made: list[FleetBed] = []

    def make(**kwargs: Any) -> FleetBed:
        bed = FleetBed(**kwargs)
        made.append(bed)
        return bed.create()

    yield make
    for bed in made:
        bed.stop_instances()
        for inst in bed.instances:
            if inst.daemon is not None:
                print(f"--- instance {inst.index} exit={inst.daemon.returncode} stderr (last 3000 chars) ---\n"
                      f"{inst.daemon.stderr_text()[-3000:]}")
        bed.destroy()


# -- configs -----------------------------------------------------------------------

FLEET_ACCELERATOR = "arn:aws:globalaccelerator::123456789012:accelerator/f1ee7000-0000-4000-8000-000000000014"
FLEET_LISTENER = f"{FLEET_ACCELERATOR}/listener/f1ee7001"
FLEET_POOL = "f1ee7000-0000-4000-8000-0000000000aa"
VIP_PORT = 8000


def fleet_member_id(index: int) -> str:
    return f"f1ee7000-0000-4000-8000-0000000000b{index:x}"


def fleet_config(backends: Sequence[TcpBackend], lb_algorithm: str = "SOURCE_IP",
                 session_persistence: Mapping[str, Any] | None = None, client_affinity: str = "NONE",
                 port: int = VIP_PORT, workers: int = 1, **extra: Any) -> dict[str, Any]:
    """The one config every instance runs: a listener on VIP:port (connection
    log on, so flows can be traced to an instance) in front of one pool of the
    backends, with fixed ids so every instance derives the same objects.
    `extra`: more top-level sections (e.g. `cluster`)."""
    from .configs import config, listener, member, pool
    members = [member(b.port, address=b.host, name=b.name, id=fleet_member_id(i)) for i, b in enumerate(backends)]
    pool_extra: dict[str, Any] = {}
    if session_persistence is not None:
        pool_extra["session_persistence"] = dict(session_persistence)
    p = pool(members, lb_algorithm=lb_algorithm, pool_id=FLEET_POOL, name="fleet", **pool_extra)
    l = listener([port], FLEET_POOL, accelerator=FLEET_ACCELERATOR, bind=VIP, client_affinity=client_affinity,
                 arn=FLEET_LISTENER, connection_log=True)
    return config([l], [p], workers=workers, accelerator=FLEET_ACCELERATOR, **extra)


def cluster_section(name: str, instance: str, endpoints: Sequence[str]) -> dict[str, Any]:
    """The `cluster` config section as issue 14 names it (a contract)."""
    return {"name": name, "instance": instance, "etcd": {"endpoints": list(endpoints)}}


# -- control API and per-instance traffic ----------------------------------------------

def elb(d: Daemon, method: str, path: str, body: Mapping[str, Any] | None = None,
        timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """An ELB v3 request (docs/api.md §4) on the daemon's control socket:
    `path` after `/v3/<project>/elb/`. Returns (status, JSON body or {})."""
    from .configs import PROJECT_ID
    status, _, raw = d.request(method, f"/v3/{PROJECT_ID}/elb/{path}", body, timeout=timeout)
    return status, (json.loads(raw) if raw else {})


def aws(d: Daemon, operation: str, body: Mapping[str, Any], timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """An AWS Global Accelerator request (docs/api.md §3): (status, JSON body)."""
    status, _, raw = d.request("POST", "/", json.dumps(dict(body)), timeout=timeout, headers={
        "X-Amz-Target": f"GlobalAccelerator_V20180706.{operation}", "Content-Type": "application/x-amz-json-1.1"})
    return status, (json.loads(raw) if raw else {})


def local_members(inst: Instance, count: int, port: int = VIP_PORT, timeout: float = 2.0) -> list[str]:
    """Members named by `count` sequential connections made inside the
    instance's own namespace to VIP:port: they reach that instance only
    (the VIP is local there), so this asks one instance what is in force.
    Raises OSError (e.g. ConnectionRefusedError) when nothing listens."""
    def run() -> list[str]:
        names = []
        for _ in range(count):
            with socket.create_connection((VIP, port), timeout=timeout) as s:
                names.append(recv_line(s).decode())
        return names
    return inst.ns.call(run)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> float | None:
    """Seconds until predicate() held (exceptions count as false), None on timeout."""
    start = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except (OSError, AssertionError):
            pass
        if time.monotonic() - start > timeout:
            return None
        time.sleep(interval)
