"""Builders for configs in the YAML shape of docs/architecture.md §14 (field names are the
APIs' own). They return plain dicts: edit them freely before passing to
`daemon(...)`. Ids and ARNs are fresh per call unless given, so two listeners
or pools never collide; the daemon sets state_file and control.unix_socket.

    ports = port_range(4)
    a, b = tcp_backend("a", "id"), tcp_backend("b", "id")
    cfg = single_pool_config(ports, [member(a.port, weight=3), member(b.port)])
    d = daemon(cfg)
"""
from __future__ import annotations

import secrets
import uuid
from typing import Any, Iterable, Sequence

ACCOUNT = "123456789012"
PROJECT_ID = "ac80359381a34f04b39a333b0ea5117a"


def accelerator_arn() -> str:
    return f"arn:aws:globalaccelerator::{ACCOUNT}:accelerator/{uuid.uuid4()}"


def listener_arn(accelerator: str) -> str:
    return f"{accelerator}/listener/{secrets.token_hex(4)}"


def port_ranges(ports: Sequence[int] | Iterable[Sequence[int]]) -> list[dict[str, int]]:
    """[8000, 8001, 8002] -> [{FromPort: 8000, ToPort: 8002}] (consecutive
    ports), or [(8000, 8002), (9000, 9000)] -> one range per pair."""
    ports = list(ports)
    if ports and isinstance(ports[0], (tuple, list)):
        return [{"FromPort": int(lo), "ToPort": int(hi)} for lo, hi in ports]
    ranges: list[dict[str, int]] = []
    for p in sorted(ports):
        if ranges and ranges[-1]["ToPort"] == p - 1:
            ranges[-1]["ToPort"] = p
        else:
            ranges.append({"FromPort": p, "ToPort": p})
    return ranges


def member(port: int | None, address: str = "127.0.0.1", weight: int | None = None,
           name: str | None = None, **extra: Any) -> dict[str, Any]:
    """A pool member; port None = forward to the port the client reached."""
    m: dict[str, Any] = {"address": address}
    if port is not None:
        m["protocol_port"] = port
    if weight is not None:
        m["weight"] = weight
    if name is not None:
        m["name"] = name
    m.update(extra)
    return m


def pool(members: list[dict[str, Any]], protocol: str = "TCP", lb_algorithm: str = "ROUND_ROBIN",
         pool_id: str | None = None, name: str | None = None, **extra: Any) -> dict[str, Any]:
    """extra: session_persistence, slow_start, description, ... as in §9."""
    pid = pool_id or str(uuid.uuid4())
    p: dict[str, Any] = {"id": pid, "name": name or f"pool-{pid[:8]}", "protocol": protocol,
                         "lb_algorithm": lb_algorithm}
    p.update(extra)
    p["members"] = members
    return p


def listener(ports, pool_id: str, protocol: str = "TCP", accelerator: str | None = None,
             bind: str = "127.0.0.1", client_affinity: str = "NONE", idle_timeout: int | None = None,
             arn: str | None = None, **extra: Any) -> dict[str, Any]:
    l: dict[str, Any] = {
        "ListenerArn": arn or listener_arn(accelerator or accelerator_arn()),
        "PortRanges": port_ranges(ports),
        "Protocol": protocol,
        "ClientAffinity": client_affinity,
        "pool_id": pool_id,
        "bind": bind,
    }
    if idle_timeout is not None:
        l["idle_timeout"] = idle_timeout
    l.update(extra)
    return l


def config(listeners: list[dict[str, Any]], pools: list[dict[str, Any]], workers: int | str | None = None,
           accelerator: str | None = None, project_id: str = PROJECT_ID, **extra: Any) -> dict[str, Any]:
    """A whole config with one accelerator holding `listeners`. Listener ARNs
    are re-rooted under the accelerator's ARN."""
    acc = accelerator or accelerator_arn()
    fixed = []
    for l in listeners:
        l = dict(l)
        suffix = l["ListenerArn"].rsplit("/listener/", 1)[1]
        l["ListenerArn"] = f"{acc}/listener/{suffix}"
        fixed.append(l)
    c: dict[str, Any] = {}
    if workers is not None:
        c["workers"] = workers
    c["accelerators"] = [{"AcceleratorArn": acc, "listeners": fixed}]
    c["project_id"] = project_id
    c["pools"] = pools
    c.update(extra)
    return c


def single_pool_config(ports, members: list[dict[str, Any]], protocol: str = "TCP",
                       lb_algorithm: str = "ROUND_ROBIN", client_affinity: str = "NONE",
                       workers: int | str | None = None, pool_extra: dict[str, Any] | None = None,
                       listener_extra: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """One listener over `ports` in front of one pool of `members`."""
    p = pool(members, protocol=protocol, lb_algorithm=lb_algorithm, **(pool_extra or {}))
    l = listener(ports, p["id"], protocol=protocol, client_affinity=client_affinity, **(listener_extra or {}))
    return config([l], [p], workers=workers, **extra)
