"""API updates racing SIGHUP reloads that remove and re-add their objects
(issue 12 §4). Every ELB lookup must happen under the update gate: a reload
that removes the pool between a handler's check and its change used to crash
the daemon (a force-unwrapped lookup in ELB/ELBAPI.swift).

Black box: 500 UpdatePool / CreateMember / DeleteMember calls (and the AWS
shape's UpdateListener on B's listener, which had the same flaw) on the
control Unix socket race 500 SIGHUPs (every 20-50 ms) whose config file
alternately drops pool B (and its listener) and brings it back with member M.

"The final state equals the last acknowledged write" is checked precisely:
once the race is over, the file re-adds B (reload waited for), an UpdatePool
is acknowledged with fresh values, the file then drops B (DescribePool: 404)
and re-adds it; DescribePool must then show exactly the pool that the
acknowledged UpdatePool answered with (the state file's version is laid over
the re-added pool), and every member it lists must be readable.
"""
from __future__ import annotations

import json
import random
import threading
import time
import uuid

import pytest

from harness import config, listener, member, pool
from harness.configs import PROJECT_ID

CALLS = 500
RELOADS = 500
BASE = f"/v3/{PROJECT_ID}/elb"


def configs(ports, backend_port):
    """(with B, without B): the same pool A always; pool B, its listener and member M only in the first."""
    pool_a = pool([member(backend_port)], pool_id=str(uuid.uuid4()), name="pool-a")
    pool_b = pool([member(backend_port, id=str(uuid.uuid4()), name="m")], pool_id=str(uuid.uuid4()), name="pool-b")
    listener_a = listener(ports[:1], pool_a["id"])
    listener_b = listener(ports[1:3], pool_b["id"])
    with_b = config([listener_a, listener_b], [pool_a, pool_b], workers=2)
    without_b = json.loads(json.dumps(with_b))
    without_b["accelerators"][0]["listeners"] = [l for l in without_b["accelerators"][0]["listeners"]
                                                 if l["pool_id"] != pool_b["id"]]
    without_b["pools"] = [p for p in without_b["pools"] if p["id"] != pool_b["id"]]
    return with_b, without_b, pool_b, listener_b_arn(with_b, pool_b["id"])


def listener_b_arn(cfg, pool_id: str) -> str:
    return next(l["ListenerArn"] for l in cfg["accelerators"][0]["listeners"] if l["pool_id"] == pool_id)


def check_answer(op: str, status: int, headers: dict, body: bytes, pool_id: str) -> dict | None:
    """A success in the operation's shape, or a 404 in the ELB error shape (the AWS
    shape's ListenerNotFoundException); returns the parsed body."""
    if op == "UpdateListener":
        doc = json.loads(body)
        assert "x-amzn-requestid" in headers, f"{op}: no x-amzn-RequestId ({status} {body!r})"
        if status == 400:
            assert doc["__type"] == "ListenerNotFoundException", f"{op}: {body!r}"
            return None
        assert status == 200, f"{op}: expected 200 or ListenerNotFoundException, got {status} {body!r}"
        assert doc["Listener"]["ListenerArn"] and doc["Listener"]["ClientAffinity"] in ("NONE", "SOURCE_IP")
        return doc
    assert "x-request-id" in headers, f"{op}: no X-Request-Id ({status} {body!r})"
    if status == 404:
        err = json.loads(body)
        assert err["error_code"] == "ELB.8904", f"{op}: {status} {body!r}"
        assert err["error_msg"].endswith("could not be found."), f"{op}: {body!r}"
        assert err["request_id"] == headers["x-request-id"]
        return None
    expected = {"UpdatePool": 200, "CreateMember": 201, "DeleteMember": 204}[op]
    assert status == expected, f"{op}: expected {expected} or 404, got {status} {body!r}"
    if op == "DeleteMember":
        assert body == b""
        return None
    doc = json.loads(body)
    if op == "UpdatePool":
        assert doc["pool"]["id"] == pool_id
    else:
        assert doc["member"]["id"] and doc["member"]["address"] == "127.0.0.1"
    return doc


@pytest.mark.timeout(240)
def test_updates_racing_reloads_that_remove_and_readd_the_pool(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(3)
    with_b, without_b, pool_b, arn_b = configs(ports, backend.port)
    d = daemon(with_b)
    pid = d.pid
    pool_id = pool_b["id"]
    member_m = pool_b["members"][0]["id"]

    failures: list[str] = []
    counts: dict[str, int] = {}

    def reloader() -> None:
        for i in range(RELOADS):
            if not d.running:
                failures.append(f"daemon exited during reload {i}")
                return
            d.write_config(without_b if i % 2 == 0 else with_b)
            d.sighup()
            time.sleep(random.uniform(0.020, 0.050))

    def caller() -> None:
        created: list[str] = []
        rng = random.Random(12)
        for i in range(CALLS):
            op = ("UpdatePool", "CreateMember", "DeleteMember", "UpdateListener")[i % 4]
            try:
                if op == "UpdatePool":
                    answer = d.request("PUT", f"{BASE}/pools/{pool_id}",
                                       {"pool": {"name": f"race-{i}", "description": f"call {i}"}})
                elif op == "CreateMember":
                    answer = d.request("POST", f"{BASE}/pools/{pool_id}/members",
                                       {"member": {"address": "127.0.0.1", "protocol_port": 20000 + i}})
                elif op == "DeleteMember":
                    victim = created.pop() if created else member_m
                    answer = d.request("DELETE", f"{BASE}/pools/{pool_id}/members/{victim}")
                else:
                    answer = d.request("POST", "/", {"ListenerArn": arn_b, "ClientAffinity": ("NONE", "SOURCE_IP")[i % 8 // 4]},
                                       {"X-Amz-Target": "GlobalAccelerator_V20180706.UpdateListener",
                                        "Content-Type": "application/x-amz-json-1.1"})
            except OSError as e:
                failures.append(f"call {i} ({op}): {e!r} (daemon running: {d.running})")
                return
            try:
                doc = check_answer(op, *answer, pool_id)
            except AssertionError as e:
                failures.append(f"call {i}: {e}")
                return
            counts[f"{op} {answer[0]}"] = counts.get(f"{op} {answer[0]}", 0) + 1
            if op == "CreateMember" and doc is not None:
                created.append(doc["member"]["id"])
            # Spread the calls over the reloads' whole span.
            time.sleep(rng.uniform(0.0, 0.060))

    threads = [threading.Thread(target=reloader), threading.Thread(target=caller)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(200)
    assert not failures, f"{failures[0]}\n--- stderr ---\n{d.stderr_text()[-4000:]}"
    assert d.running and d.pid == pid, f"flowgated died (code {d.returncode}):\n{d.stderr_text()[-4000:]}"
    assert "Fatal error" not in d.stderr_text()
    # Both outcomes happened, so the race really ran both ways.
    assert counts.get("UpdatePool 200", 0) > 0 and counts.get("UpdatePool 404", 0) > 0, counts
    assert counts.get("UpdateListener 200", 0) > 0 and counts.get("UpdateListener 400", 0) > 0, counts

    # The last acknowledged write survives a reload that drops and one that re-adds its pool.
    d.write_config(with_b)
    d.sighup(wait=True)
    status, _, body = d.request("PUT", f"{BASE}/pools/{pool_id}",
                                {"pool": {"name": "final", "description": "the last acknowledged write"}})
    assert status == 200, body
    acknowledged = json.loads(body)["pool"]
    d.write_config(without_b)
    d.sighup(wait=True)
    assert d.request("GET", f"{BASE}/pools/{pool_id}")[0] == 404
    d.write_config(with_b)
    d.sighup(wait=True)
    status, _, body = d.request("GET", f"{BASE}/pools/{pool_id}")
    assert status == 200, body
    assert json.loads(body)["pool"] == acknowledged
    for m in acknowledged["members"]:
        assert d.request("GET", f"{BASE}/pools/{pool_id}/members/{m['id']}")[0] == 200
    assert d.running and d.pid == pid
