"""Health monitors through huaweicloudsdkelb, unchanged, signed over TCP
(issue 6): create, show, list, update and delete a monitor, and see its
checks in the members' operating_status."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("huaweicloudsdkelb")
pytest.importorskip("boto3")

from huaweicloudsdkelb.v3 import (CreateHealthMonitorOption, CreateHealthMonitorRequest,  # noqa: E402
                                  CreateHealthMonitorRequestBody, DeleteHealthMonitorRequest,
                                  ListHealthMonitorsRequest, ListMembersRequest, ShowHealthMonitorRequest,
                                  ShowMemberRequest, UpdateHealthMonitorOption, UpdateHealthMonitorRequest,
                                  UpdateHealthMonitorRequestBody)

from harness import PROJECT_ID, config, listener, member, pool  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sdk.clients import control_section, elb_client  # noqa: E402


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.timeout(60)
def test_health_monitor_round_trip_with_huaweicloudsdkelb(daemon, tcp_backend, port_range):
    alive = tcp_backend("alive", mode="echo")
    dead = tcp_backend("dead", mode="echo")
    ports = port_range(1)
    (control_port,) = port_range(1, proto=("tcp",))
    p = pool([member(alive.port), member(dead.port)], name="web")
    d = daemon(config([listener(ports, p["id"])], [p], workers=1, control=control_section(control_port)))
    elb = elb_client(control_port, PROJECT_ID)
    dead.stop()

    def statuses():
        return {m.protocol_port: m.operating_status
                for m in elb.list_members(ListMembersRequest(pool_id=p["id"])).members}

    assert statuses() == {alive.port: "NO_MONITOR", dead.port: "NO_MONITOR"}
    created = elb.create_health_monitor(CreateHealthMonitorRequest(body=CreateHealthMonitorRequestBody(
        healthmonitor=CreateHealthMonitorOption(pool_id=p["id"], type="TCP", delay=1, timeout=1, max_retries=2,
                                                max_retries_down=2, name="hm"))))
    hm = created.healthmonitor
    assert (hm.type, hm.delay, hm.timeout, hm.max_retries, hm.max_retries_down, hm.name) == ("TCP", 1, 1, 2, 2, "hm")
    assert [x.id for x in hm.pools] == [p["id"]]

    # delay × max_retries_down + timeout = 3 s, plus slack for a busy machine.
    assert wait_for(lambda: statuses() == {alive.port: "ONLINE", dead.port: "OFFLINE"}, 4), statuses()
    dead_id = next(m.id for m in elb.list_members(ListMembersRequest(pool_id=p["id"])).members if m.protocol_port == dead.port)
    assert elb.show_member(ShowMemberRequest(pool_id=p["id"], member_id=dead_id)).member.operating_status == "OFFLINE"

    shown = elb.show_health_monitor(ShowHealthMonitorRequest(healthmonitor_id=hm.id)).healthmonitor
    assert shown.id == hm.id and shown.delay == 1
    listed = elb.list_health_monitors(ListHealthMonitorsRequest()).healthmonitors
    assert [x.id for x in listed] == [hm.id]

    updated = elb.update_health_monitor(UpdateHealthMonitorRequest(healthmonitor_id=hm.id, body=UpdateHealthMonitorRequestBody(
        healthmonitor=UpdateHealthMonitorOption(delay=2, max_retries_down=3)))).healthmonitor
    assert (updated.delay, updated.max_retries_down) == (2, 3)
    assert statuses() == {alive.port: "ONLINE", dead.port: "OFFLINE"}   # state kept across the update

    # The member comes back: ONLINE after max_retries (2) passing checks, delay 2 s apart.
    back = tcp_backend("dead", mode="echo", port=dead.port)
    assert back.port == dead.port
    assert wait_for(lambda: statuses()[dead.port] == "ONLINE", 2 * 2 + 2), statuses()

    elb.delete_health_monitor(DeleteHealthMonitorRequest(healthmonitor_id=hm.id))
    assert statuses() == {alive.port: "NO_MONITOR", dead.port: "NO_MONITOR"}
    assert elb.list_health_monitors(ListHealthMonitorsRequest()).healthmonitors == []
