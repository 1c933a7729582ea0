"""Health checks through the daemon (issue 6): a killed member goes OFFLINE
within delay × max_retries_down + timeout and takes no new flow; back up, it
returns ONLINE and ramps with slow start; UDP_CONNECT sees ICMP port
unreachable. Black box: members are real loopback servers, status comes from
ELB ListMembers/ShowMember, counts from GET /metrics."""
from __future__ import annotations

import json
import time
import uuid

import pytest

from harness import TcpBackend, UdpBackend, member, single_pool_config, tcp_member_name
from harness.metrics import metric_sum, parse_metrics

# The checker looks for due checks every 50 ms; scheduling on a busy 2-core
# CI machine adds a little more.
SLACK = 1.0


def monitor(kind: str = "TCP", delay: int = 1, timeout: int = 1, max_retries: int = 2, max_retries_down: int = 2,
            **extra) -> dict:
    m = {"id": str(uuid.uuid4()), "type": kind, "delay": delay, "timeout": timeout,
         "max_retries": max_retries, "max_retries_down": max_retries_down}
    m.update(extra)
    return m


def monitored_config(ports, members, hm: dict, protocol: str = "TCP", **pool_extra) -> dict:
    cfg = single_pool_config(ports, members, protocol=protocol, workers=2,
                             pool_extra=dict(healthmonitor_id=hm["id"], **pool_extra))
    cfg["healthmonitors"] = [hm]
    return cfg


def member_status(d, pool_id: str) -> dict[int, str]:
    """protocol_port → operating_status, from ELB ListMembers."""
    status, _, body = d.request("GET", f"/v3/{d.config['project_id']}/elb/pools/{pool_id}/members")
    assert status == 200, body
    return {m["protocol_port"]: m["operating_status"] for m in json.loads(body)["members"]}


def member_ids(d, pool_id: str) -> dict[int, str]:
    status, _, body = d.request("GET", f"/v3/{d.config['project_id']}/elb/pools/{pool_id}/members")
    assert status == 200, body
    return {m["protocol_port"]: m["id"] for m in json.loads(body)["members"]}


def scrape(d) -> list:
    status, _, body = d.request("GET", "/metrics")
    assert status == 200
    return parse_metrics(body.decode())


def wait_for(predicate, timeout: float, step: float = 0.02):
    """Seconds until predicate() held, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    return None


@pytest.mark.timeout(90)
def test_killed_member_goes_offline_takes_no_flow_and_returns_with_slow_start(daemon, port_range):
    ports = port_range(1)
    backends = [TcpBackend(name, mode="id") for name in ("a", "b", "c")]
    try:
        hm = monitor("TCP", delay=1, timeout=1, max_retries=2, max_retries_down=2)
        cfg = monitored_config(ports, [member(b.port) for b in backends], hm,
                               slow_start={"enable": True, "duration": 30})
        pool_id = cfg["pools"][0]["id"]
        d = daemon(cfg)
        assert wait_for(lambda: set(member_status(d, pool_id).values()) == {"ONLINE"}, 5) is not None
        ids = member_ids(d, pool_id)
        dead = backends[1]
        dead_id = ids[dead.port]

        # Death with no traffic: only the active check can see it.
        dead.stop()
        bound = 1 * 2 + 1   # delay × max_retries_down + timeout
        took = wait_for(lambda: member_status(d, pool_id)[dead.port] == "OFFLINE", bound + SLACK)
        assert took is not None, f"not OFFLINE within {bound + SLACK} s: {member_status(d, pool_id)}"
        assert d.log_lines("member_offline"), d.stderr_text()[-2000:]
        status, _, body = d.request("GET", f"/v3/{d.config['project_id']}/elb/pools/{pool_id}/members/{dead_id}")
        assert status == 200 and json.loads(body)["member"]["operating_status"] == "OFFLINE"
        samples = scrape(d)
        assert metric_sum(samples, "flowgate_member_up", member=dead_id) == 0
        picks_before = metric_sum(samples, "flowgate_member_picks_total", member=dead_id)

        # No new flow is even tried on it: 30 connections, all on a and c, no pick of b.
        served = [tcp_member_name(ports[0]) for _ in range(30)]
        assert set(served) == {"a", "c"}
        samples = scrape(d)
        assert metric_sum(samples, "flowgate_member_picks_total", member=dead_id) == picks_before
        assert metric_sum(samples, "flowgate_member_connect_failures_total", member=dead_id) == 0

        # Back: ONLINE after max_retries passing checks, then a slow-start ramp.
        backends[1] = TcpBackend("b", mode="id", port=dead.port)
        took = wait_for(lambda: member_status(d, pool_id)[dead.port] == "ONLINE", 1 * 2 + 1 + SLACK)
        assert took is not None, member_status(d, pool_id)
        fraction = metric_sum(scrape(d), "flowgate_member_slow_start_fraction", member=dead_id)
        assert 0 < fraction < 0.2, fraction
        served = [tcp_member_name(ports[0]) for _ in range(60)]
        # Full weight would give b 20 of 60; a few seconds into a 30 s ramp it gets ~1/10 of that.
        assert served.count("b") <= 8, served
        assert served.count("a") >= 24 and served.count("c") >= 24, served
    finally:
        for b in backends:
            b.stop()


@pytest.mark.timeout(60)
def test_passive_connect_failures_take_a_member_offline_before_any_active_check(daemon, port_range):
    """A long delay (50 s): after the first check, only the data plane's own
    connect failures can take the dead member out."""
    ports = port_range(1)
    backends = [TcpBackend(name, mode="id") for name in ("a", "b")]
    try:
        hm = monitor("TCP", delay=50, timeout=1, max_retries=1, max_retries_down=2)
        cfg = monitored_config(ports, [member(b.port) for b in backends], hm)
        pool_id = cfg["pools"][0]["id"]
        d = daemon(cfg)
        ids = member_ids(d, pool_id)
        time.sleep(0.3)   # the first active check has passed
        backends[1].stop()
        served = [tcp_member_name(ports[0]) for _ in range(10)]
        assert served == ["a"] * 10   # failed connects are retried on a: the client never notices
        dead_id = ids[backends[1].port]
        assert wait_for(lambda: member_status(d, pool_id)[backends[1].port] == "OFFLINE", 1) is not None
        samples = scrape(d)
        assert metric_sum(samples, "flowgate_member_connect_failures_total", member=dead_id) == 2
        # The worker marks it down at once; the checker logs it at its next 50 ms tick.
        assert wait_for(lambda: any("check=passive" in l for l in d.log_lines("member_offline")), 1) is not None, \
            d.stderr_text()[-2000:]
    finally:
        for b in backends:
            b.stop()


@pytest.mark.timeout(60)
def test_udp_connect_detects_an_icmp_unreachable_member(daemon, port_range):
    ports = port_range(1)
    alive = UdpBackend("alive", mode="echo")
    silent = UdpBackend("silent", mode="silent")
    doomed = UdpBackend("doomed", mode="echo")
    try:
        hm = monitor("UDP_CONNECT", delay=1, timeout=1, max_retries=1, max_retries_down=2)
        cfg = monitored_config(ports, [member(alive.port), member(silent.port), member(doomed.port)], hm, protocol="UDP")
        pool_id = cfg["pools"][0]["id"]
        d = daemon(cfg)
        doomed.stop()   # its port now answers ICMP port unreachable
        took = wait_for(lambda: member_status(d, pool_id)[doomed.port] == "OFFLINE", 1 * 2 + 1 + SLACK)
        assert took is not None, member_status(d, pool_id)
        # A silent member is healthy for UDP_CONNECT (no ICMP error within timeout), as in ELB.
        time.sleep(2.2)
        status = member_status(d, pool_id)
        assert status == {alive.port: "ONLINE", silent.port: "ONLINE", doomed.port: "OFFLINE"}
        assert silent.count >= 2   # the probes reached it
    finally:
        for b in (alive, silent, doomed):
            b.stop()


def test_pool_without_monitor_shows_no_monitor(daemon, tcp_backend, port_range):
    ports = port_range(1)
    a = tcp_backend("a", mode="id")
    cfg = single_pool_config(ports, [member(a.port)])
    d = daemon(cfg)
    assert member_status(d, cfg["pools"][0]["id"]) == {a.port: "NO_MONITOR"}


@pytest.mark.timeout(60)
def test_monitor_created_through_the_elb_api_checks_and_deleting_it_frees_the_member(daemon, tcp_backend, port_range):
    ports = port_range(1)
    a = tcp_backend("a", mode="id")
    b = tcp_backend("b", mode="id")
    cfg = single_pool_config(ports, [member(a.port), member(b.port)], workers=2)
    pool_id = cfg["pools"][0]["id"]
    d = daemon(cfg)
    b.stop()
    base = f"/v3/{d.config['project_id']}/elb/healthmonitors"
    status, _, body = d.request("POST", base, body={"healthmonitor": {
        "pool_id": pool_id, "type": "TCP", "delay": 1, "timeout": 1, "max_retries": 1, "max_retries_down": 1}})
    assert status == 201, body
    monitor_id = json.loads(body)["healthmonitor"]["id"]
    assert wait_for(lambda: member_status(d, pool_id) == {a.port: "ONLINE", b.port: "OFFLINE"}, 1 + 1 + SLACK) is not None
    # Update: a longer delay keeps the state (the member stays OFFLINE).
    status, _, body = d.request("PUT", f"{base}/{monitor_id}", body={"healthmonitor": {"delay": 5}})
    assert status == 200, body
    assert member_status(d, pool_id) == {a.port: "ONLINE", b.port: "OFFLINE"}
    # Delete: NO_MONITOR, and nothing holds b down any more (its port is
    # still closed, so connects to it fail and are retried on a).
    status, _, body = d.request("DELETE", f"{base}/{monitor_id}")
    assert status == 204, body
    assert member_status(d, pool_id) == {a.port: "NO_MONITOR", b.port: "NO_MONITOR"}
    samples = scrape(d)
    b_id = member_ids(d, pool_id)[b.port]
    assert metric_sum(samples, "flowgate_member_up", member=b_id) == 1
