"""A real etcd cluster for the fleet tests (issue 14).

    from harness.etcd import etcd_cluster   # the fixture; importing it is enough

    def test_x(etcd_cluster):
        etcd = etcd_cluster()                  # 3 members on loopback, healthy
        etcd.endpoints                         # ["http://127.0.0.1:P1", ...]
        etcd.put("/k", "v"); etcd.get("/k")    # through the v3 JSON gateway
        etcd.kill(0)                           # SIGKILL one member by PID
        etcd.restart(0)                        # same name, ports and data dir
        etcd.kill_all(); etcd.restart_all()

Each member is Debian's `etcd` (etcd-server 3.4, installed by .ci/setup.sh)
with its data and log under a temporary directory. Ports come from
harness/ports.py (reserved outside the ephemeral range, so a restart can take
the same ones again). Members are started and stopped by PID only: SIGTERM,
then SIGKILL after a grace period; the fixture's teardown and an atexit hook
stop everything also when a test fails or pytest is interrupted.

`command_prefix` runs each member under another command that execs it (for
example ["ip", "netns", "exec", "ns1"]), and `host` is the address members
listen on, so a network-namespace harness can put etcd where it needs it.
"""
from __future__ import annotations

import atexit
import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Sequence

import pytest

from .ports import free_port, release_ports

ETCD_BINARY = os.environ.get("ETCD", "etcd")
START_TIMEOUT = 20.0
STOP_GRACE = 5.0
_live: "set[EtcdCluster]" = set()


def etcd_path() -> str | None:
    return shutil.which(ETCD_BINARY)


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_end(prefix: str | bytes) -> bytes:
    """etcd's range_end for "every key starting with prefix"."""
    raw = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\0"


class EtcdMember:
    def __init__(self, cluster: "EtcdCluster", index: int):
        self.cluster = cluster
        self.index = index
        self.name = f"m{index}"
        self.client_port = free_port("tcp", cluster.reserve_host)
        self.peer_port = free_port("tcp", cluster.reserve_host)
        self.data_dir = os.path.join(cluster.dir, self.name)
        self.log_path = os.path.join(cluster.dir, f"{self.name}.log")
        self.proc: subprocess.Popen | None = None

    @property
    def client_url(self) -> str:
        return f"http://{self.cluster.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.cluster.host}:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def command(self) -> list[str]:
        c = self.cluster
        return [*c.command_prefix, c.binary,
                "--name", self.name,
                "--data-dir", self.data_dir,
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", c.initial_cluster,
                "--initial-cluster-state", "new",
                "--initial-cluster-token", c.token,
                # Faster elections than the defaults (100/1000 ms): a killed
                # leader is replaced within about a second, on loopback.
                "--heartbeat-interval", "50",
                "--election-timeout", "500",
                "--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn"]

    def start(self) -> None:
        if self.pid is not None:
            return
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM by PID, SIGKILL after `grace` seconds; reaps the process."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL by PID (a crash: nothing flushed, no goodbye to peers)."""
        if self.proc is None:
            return
        self.signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def healthy(self, timeout: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=timeout) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def log_tail(self, n: int = 30) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class EtcdCluster:
    def __init__(self, size: int = 3, host: str = "127.0.0.1", command_prefix: Sequence[str] = (),
                 reserve_host: str = "127.0.0.1", binary: str | None = None):
        self.binary = binary or etcd_path() or ETCD_BINARY
        self.host = host
        self.reserve_host = reserve_host
        self.command_prefix = list(command_prefix)
        self.dir = tempfile.mkdtemp(prefix="fg-etcd-")
        self.token = f"flowgate-test-{os.getpid()}-{int(time.time() * 1000)}"
        self.members = [EtcdMember(self, i) for i in range(size)]
        self.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        _live.add(self)

    # --- lifecycle -------------------------------------------------------------
    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    @property
    def pids(self) -> list[int | None]:
        return [m.pid for m in self.members]

    def start(self, timeout: float = START_TIMEOUT) -> "EtcdCluster":
        for m in self.members:
            m.start()
        self.wait_healthy(timeout=timeout)
        return self

    def wait_healthy(self, members: Sequence[int] | None = None, timeout: float = START_TIMEOUT) -> None:
        """Until every listed member (default: every running one) answers
        /health true, which etcd only does once the cluster has a leader."""
        indices = list(members) if members is not None else [m.index for m in self.members if m.pid]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i in indices:
                m = self.members[i]
                if m.proc is not None and m.proc.poll() is not None:
                    raise AssertionError(f"etcd {m.name} exited with {m.proc.returncode}:\n{m.log_tail()}")
            if all(self.members[i].healthy() for i in indices):
                return
            time.sleep(0.1)
        tails = "\n".join(f"--- {self.members[i].name}\n{self.members[i].log_tail()}" for i in indices)
        raise AssertionError(f"etcd members {indices} not healthy within {timeout}s:\n{tails}")

    def kill(self, index: int) -> None:
        self.members[index].kill()

    def kill_all(self) -> None:
        for m in self.members:
            m.kill()

    def restart(self, index: int, wait: bool = True) -> None:
        self.members[index].stop()
        self.members[index].start()
        if wait:
            self.wait_healthy([index])

    def restart_all(self, wait: bool = True) -> None:
        for m in self.members:
            if m.pid is None:
                m.start()
        if wait:
            self.wait_healthy([m.index for m in self.members])

    def stop(self) -> None:
        for m in self.members:
            try:
                m.stop()
            except Exception:  # keep stopping the others
                m.kill()
        release_ports([p for m in self.members for p in (m.client_port, m.peer_port)])
        shutil.rmtree(self.dir, ignore_errors=True)
        _live.discard(self)

    # --- the v3 JSON gateway, for tests that inspect or change keys ---------------
    def call(self, path: str, body: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """POST `body` to /v3/<path> on the first member that answers."""
        last: Exception | None = None
        for m in self.members:
            if m.pid is None:
                continue
            req = urllib.request.Request(f"{m.client_url}/v3/{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.loads(r.read() or b"{}")
            except urllib.error.HTTPError as e:  # etcd answered: do not try another member
                raise AssertionError(f"etcd {path}: HTTP {e.code} {e.read()[:300]!r}") from e
            except OSError as e:
                last = e
        raise AssertionError(f"etcd {path}: no member answered ({last})")

    def put(self, key: str, value: str | bytes, lease: int | None = None) -> int:
        body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("kv/put", body)["header"]["revision"])

    def get(self, key: str) -> bytes | None:
        kvs = self.call("kv/range", {"key": b64(key)}).get("kvs") or []
        return unb64(kvs[0].get("value", "")) if kvs else None

    def get_prefix(self, prefix: str) -> dict[str, bytes]:
        r = self.call("kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        return {unb64(kv["key"]).decode(): unb64(kv.get("value", "")) for kv in r.get("kvs") or []}

    def delete_prefix(self, prefix: str) -> int:
        r = self.call("kv/deleterange", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))})
        return int(r.get("deleted", 0))

    def revision(self) -> int:
        return int(self.call("kv/range", {"key": b64("\0")})["header"]["revision"])

    def compact(self, revision: int | None = None) -> None:
        self.call("kv/compaction", {"revision": str(revision or self.revision()), "physical": True})


@atexit.register
def _stop_leftovers() -> None:
    for cluster in list(_live):
        cluster.stop()


@pytest.fixture
def etcd_cluster():
    """etcd_cluster(size=3, **kw) -> a started, healthy EtcdCluster; stopped
    (by PID) at teardown, also on failure. Skips when etcd is not installed."""
    made: list[EtcdCluster] = []

    def make(size: int = 3, **kw: Any) -> EtcdCluster:
        if not (kw.get("binary") or etcd_path()):
            if os.environ.get("FLOWGATE_REQUIRE_BINARIES") == "1":
                pytest.fail("etcd not installed (.ci/setup.sh installs etcd-server)")
            pytest.skip("etcd not installed: run .ci/setup.sh (Debian etcd-server)")
        cluster = EtcdCluster(size, **kw)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.stop()
