"""Helpers for loopback fleet tests (issue 14, docs/cluster.md): configs with
a `cluster` section, and reads of what an instance serves.

Instances on one host bind the same listener ports with SO_REUSEPORT (the
listeners are shared objects; with_cluster sets workers: 2 for that), so the kernel spreads new connections over
every instance: "every connection reaches member X" then means "in force on
every instance".
"""
from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any, Callable, Sequence

from .configs import PROJECT_ID
from .clients import tcp_member_name

ELB = f"/v3/{PROJECT_ID}/elb"


def cluster_name() -> str:
    return "t" + uuid.uuid4().hex[:10]


def with_cluster(cfg: dict[str, Any], name: str, instance: str, endpoints: Sequence[str], **etcd: Any) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    out["cluster"] = {"name": name, "instance": instance, "etcd": {"endpoints": list(endpoints), **etcd}}
    # Two workers: ports then bind with SO_REUSEPORT (ListenerBinder binds a
    # lone socket without it), so every instance on the host can share them.
    out["workers"] = 2
    return out


def elb(d, method: str, path: str, body: Any = None, timeout: float = 15.0) -> tuple[int, dict]:
    status, _, raw = d.request(method, ELB + path, body, timeout=timeout)
    return status, (json.loads(raw) if raw else {})


def aws(d, action: str, body: dict, timeout: float = 15.0) -> tuple[int, dict]:
    status, _, raw = d.request("POST", "/", body, {"X-Amz-Target": f"GlobalAccelerator_V20180706.{action}",
                                                   "Content-Type": "application/x-amz-json-1.1"}, timeout=timeout)
    return status, (json.loads(raw) if raw else {})


def members(d, pool_id: str) -> list[dict]:
    status, body = elb(d, "GET", f"/pools/{pool_id}/members")
    assert status == 200, body
    return body["members"]


def member_set(d, pool_id: str) -> set[tuple[str, int, int]]:
    return {(m["address"], m["protocol_port"], m["weight"]) for m in members(d, pool_id)}


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> float:
    """Seconds until predicate() held; AssertionError after timeout."""
    t0 = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(interval)


def served_by(port: int, n: int = 24) -> set[str]:
    """Names of the backends n new connections to `port` reached."""
    return {tcp_member_name(port) for _ in range(n)}
