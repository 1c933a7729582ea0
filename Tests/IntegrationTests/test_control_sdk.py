"""The control API driven by the real SDKs, unchanged, against the spawned
daemon (issue 5): boto3 and the aws CLI for the Global Accelerator shape,
huaweicloudsdkelb for the ELB v3 shape, signed over TCP."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("boto3")
pytest.importorskip("huaweicloudsdkelb")

import botocore.exceptions  # noqa: E402
from huaweicloudsdkcore.exceptions import exceptions as hwexc  # noqa: E402
from huaweicloudsdkelb.v3 import (CreateMemberOption, CreateMemberRequest, CreateMemberRequestBody,  # noqa: E402
                                  DeleteMemberRequest, ListMembersRequest, ListPoolsRequest, ShowMemberRequest,
                                  ShowPoolRequest, UpdateMemberOption, UpdateMemberRequest, UpdateMemberRequestBody,
                                  UpdatePoolOption, UpdatePoolRequest, UpdatePoolRequestBody,
                                  UpdatePoolSessionPersistenceOption, UpdatePoolSlowStartOption)

from harness import PROJECT_ID, config, listener, member, pool, tcp_exchange  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sdk.clients import (AWS_KEY, AWS_SECRET, REGION, control_section, elb_client, ga_client)  # noqa: E402


class Setup:
    """One daemon: two TCP listeners on one accelerator, a TCP pool with one echo member."""

    def __init__(self, daemon, tcp_backend, port_range):
        self.backend = tcp_backend("echo", mode="echo")
        self.ports = port_range(4)
        (self.control_port,) = port_range(1, proto=("tcp",))
        self.pool = pool([member(self.backend.port)], name="web")
        self.pool_id = self.pool["id"]
        second_pool = pool([member(self.backend.port)], name="other")
        self.listener = listener(self.ports[0:2], self.pool_id)
        self.listener2 = listener(self.ports[2:3], second_pool["id"])
        cfg = config([self.listener, self.listener2], [self.pool, second_pool], workers=1,
                     control=control_section(self.control_port))
        self.accelerator = cfg["accelerators"][0]["AcceleratorArn"]
        self.arn = cfg["accelerators"][0]["listeners"][0]["ListenerArn"]
        self.arn2 = cfg["accelerators"][0]["listeners"][1]["ListenerArn"]
        self.daemon = daemon(cfg)
        self.ga = ga_client(self.control_port)
        self.ga_raw = ga_client(self.control_port, validate=False)
        self.elb = elb_client(self.control_port, PROJECT_ID)


@pytest.fixture
def setup(daemon, tcp_backend, port_range):
    return Setup(daemon, tcp_backend, port_range)


# ---- AWS Global Accelerator shape: boto3 -------------------------------------------------

def test_boto3_update_describe_and_list(setup):
    new = setup.ports[3]
    r = setup.ga.update_listener(ListenerArn=setup.arn, PortRanges=[{"FromPort": new, "ToPort": new}],
                                 ClientAffinity="SOURCE_IP")
    assert r["Listener"] == {"ListenerArn": setup.arn, "PortRanges": [{"FromPort": new, "ToPort": new}],
                             "Protocol": "TCP", "ClientAffinity": "SOURCE_IP"}
    assert len(r["ResponseMetadata"]["RequestId"]) == 36
    d = setup.ga.describe_listener(ListenerArn=setup.arn)
    assert d["Listener"] == r["Listener"]
    listed = setup.ga.list_listeners(AcceleratorArn=setup.accelerator)
    assert [l["ListenerArn"] for l in listed["Listeners"]] == [setup.arn, setup.arn2]
    assert "NextToken" not in listed
    # The data plane serves the new port.
    assert tcp_exchange(new, b"hello") == b"hello"


def test_boto3_paginator_walks_every_page(setup):
    pages = list(setup.ga.get_paginator("list_listeners").paginate(
        AcceleratorArn=setup.accelerator, PaginationConfig={"PageSize": 1}))
    assert [len(p["Listeners"]) for p in pages] == [1, 1]
    assert [p["Listeners"][0]["ListenerArn"] for p in pages] == [setup.arn, setup.arn2]
    first = setup.ga.list_listeners(AcceleratorArn=setup.accelerator, MaxResults=1)
    assert "NextToken" in first
    accs = setup.ga.list_accelerators()["Accelerators"]
    assert [a["AcceleratorArn"] for a in accs] == [setup.accelerator]
    assert setup.ga.describe_accelerator(AcceleratorArn=setup.accelerator)["Accelerator"]["AcceleratorArn"] == setup.accelerator


@pytest.mark.parametrize("kwargs, code, message_part", [
    ({"PortRanges": [{"FromPort": 9, "ToPort": 8}]}, "InvalidPortRangeException", "PortRanges[0].ToPort: ToPort 8 is less than FromPort 9"),
    ({"PortRanges": [{"FromPort": 70000, "ToPort": 70000}]}, "InvalidPortRangeException", "PortRanges[0].FromPort: 70000 is not in 1..65535"),
    ({"PortRanges": [{"FromPort": 100, "ToPort": 200}, {"FromPort": 150, "ToPort": 160}]}, "InvalidPortRangeException", "overlaps"),
    ({"PortRanges": [{"FromPort": p, "ToPort": p} for p in range(20001, 20012)]}, "LimitExceededException", "at most 10"),
    ({"Protocol": "SCTP"}, "InvalidArgumentException", "Protocol \"SCTP\" is not one of TCP, UDP"),
    ({"ClientAffinity": "STICKY"}, "InvalidArgumentException", "ClientAffinity"),
])
def test_boto3_errors_raise_typed_exceptions(setup, kwargs, code, message_part):
    before = setup.ga.describe_listener(ListenerArn=setup.arn)["Listener"]
    exc_type = getattr(setup.ga.exceptions, code)
    with pytest.raises(exc_type) as info:
        setup.ga.update_listener(ListenerArn=setup.arn, **kwargs)
    assert info.value.response["Error"]["Code"] == code
    assert message_part in info.value.response["Error"]["Message"]
    assert len(info.value.response["ResponseMetadata"]["RequestId"]) == 36
    assert setup.ga.describe_listener(ListenerArn=setup.arn)["Listener"] == before


def test_boto3_not_found_token_and_raw_type_errors(setup):
    missing = setup.accelerator + "/listener/ffffffff"
    with pytest.raises(setup.ga.exceptions.ListenerNotFoundException):
        setup.ga.describe_listener(ListenerArn=missing)
    with pytest.raises(setup.ga.exceptions.ListenerNotFoundException):
        setup.ga.update_listener(ListenerArn=missing, ClientAffinity="NONE")
    with pytest.raises(setup.ga.exceptions.InvalidNextTokenException):
        setup.ga.list_listeners(AcceleratorArn=setup.accelerator, NextToken="made-up")
    with pytest.raises(setup.ga.exceptions.AcceleratorNotFoundException):
        setup.ga.list_listeners(AcceleratorArn="arn:aws:globalaccelerator::123456789012:accelerator/nope")
    # What boto3 itself would reject, sent anyway with parameter_validation off.
    with pytest.raises(setup.ga_raw.exceptions.InvalidPortRangeException):
        setup.ga_raw.update_listener(ListenerArn=setup.arn, PortRanges=[])
    with pytest.raises(setup.ga_raw.exceptions.InvalidArgumentException) as info:
        setup.ga_raw.update_listener(ListenerArn=setup.arn, PortRanges=[{"FromPort": "80", "ToPort": 80}])
    assert "must be an integer" in info.value.response["Error"]["Message"]
    with pytest.raises(setup.ga_raw.exceptions.InvalidArgumentException):
        setup.ga_raw.list_listeners(AcceleratorArn=setup.accelerator, MaxResults=101)
    with pytest.raises(setup.ga_raw.exceptions.InvalidArgumentException):
        setup.ga_raw.update_listener(ListenerArn="x" * 256)


def test_boto3_signature_failures(setup):
    cases = [
        (ga_client(setup.control_port, key="AKIDUNKNOWN"), "UnrecognizedClientException"),
        (ga_client(setup.control_port, secret="wrong-secret"), "InvalidSignatureException"),
        (ga_client(setup.control_port, unsigned=True), "MissingAuthenticationTokenException"),
    ]
    for client, code in cases:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.update_listener(ListenerArn=setup.arn, ClientAffinity="SOURCE_IP")
        assert info.value.response["Error"]["Code"] == code
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert setup.ga.describe_listener(ListenerArn=setup.arn)["Listener"]["ClientAffinity"] == "NONE"


def test_aws_cli_update_listener(setup):
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip("aws CLI not installed in the test virtualenv")
    new = setup.ports[3]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=AWS_KEY, AWS_SECRET_ACCESS_KEY=AWS_SECRET, AWS_DEFAULT_REGION=REGION,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_MAX_ATTEMPTS="1")
    out = subprocess.run([str(aws), "globalaccelerator", "update-listener", "--endpoint-url", f"http://127.0.0.1:{setup.control_port}",
                          "--listener-arn", setup.arn, "--port-ranges", f"FromPort={new},ToPort={new}", "--output", "json"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Listener"]["PortRanges"] == [{"FromPort": new, "ToPort": new}]
    bad = subprocess.run([str(aws), "globalaccelerator", "update-listener", "--endpoint-url", f"http://127.0.0.1:{setup.control_port}",
                          "--listener-arn", setup.arn, "--port-ranges", "FromPort=9,ToPort=8"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
    assert "InvalidPortRangeException" in bad.stderr


# ---- ELB v3 shape: huaweicloudsdkelb ------------------------------------------------------

def test_elb_update_show_and_list_pools(setup):
    body = UpdatePoolRequestBody(pool=UpdatePoolOption(
        lb_algorithm="LEAST_CONNECTIONS", name="web2", description="ünïcode",
        session_persistence=UpdatePoolSessionPersistenceOption(type="SOURCE_IP", persistence_timeout=5),
        slow_start=UpdatePoolSlowStartOption(enable=True, duration=60)))
    r = setup.elb.update_pool(UpdatePoolRequest(pool_id=setup.pool_id, body=body))
    assert r.pool.lb_algorithm == "LEAST_CONNECTIONS"
    assert r.pool.name == "web2" and r.pool.description == "ünïcode"
    assert r.pool.session_persistence.type == "SOURCE_IP" and r.pool.session_persistence.persistence_timeout == 5
    assert r.pool.slow_start.enable is True and r.pool.slow_start.duration == 60
    assert r.request_id
    shown = setup.elb.show_pool(ShowPoolRequest(pool_id=setup.pool_id)).pool
    assert shown.lb_algorithm == "LEAST_CONNECTIONS" and shown.project_id == PROJECT_ID
    assert [l.id for l in shown.listeners] == [setup.arn]
    everything = setup.elb.list_pools(ListPoolsRequest())
    assert len(everything.pools) == 2
    only = setup.elb.list_pools(ListPoolsRequest(id=[setup.pool_id], protocol=["TCP"]))
    assert [p.id for p in only.pools] == [setup.pool_id]
    page = setup.elb.list_pools(ListPoolsRequest(limit=1))
    assert len(page.pools) == 1 and page.page_info.next_marker == page.pools[0].id
    rest = setup.elb.list_pools(ListPoolsRequest(limit=1, marker=page.page_info.next_marker))
    assert len(rest.pools) == 1 and rest.pools[0].id != page.pools[0].id
    # Traffic still flows after the algorithm flip.
    assert tcp_exchange(setup.ports[0], b"abc") == b"abc"


def test_elb_member_create_update_list_delete(setup, tcp_backend):
    b2 = tcp_backend("second", mode="echo")
    created = setup.elb.create_member(CreateMemberRequest(pool_id=setup.pool_id, body=CreateMemberRequestBody(
        member=CreateMemberOption(address="127.0.0.1", protocol_port=b2.port, weight=5, name="b2"))))
    m = created.member
    assert (m.address, m.protocol_port, m.weight, m.name, m.operating_status) == ("127.0.0.1", b2.port, 5, "b2", "NO_MONITOR")
    upd = setup.elb.update_member(UpdateMemberRequest(pool_id=setup.pool_id, member_id=m.id, body=UpdateMemberRequestBody(
        member=UpdateMemberOption(weight=0, name="drained"))))
    assert upd.member.weight == 0 and upd.member.name == "drained"
    assert setup.elb.show_member(ShowMemberRequest(pool_id=setup.pool_id, member_id=m.id)).member.weight == 0
    listed = setup.elb.list_members(ListMembersRequest(pool_id=setup.pool_id))
    assert sorted(x.protocol_port for x in listed.members) == sorted([setup.backend.port, b2.port])
    filtered = setup.elb.list_members(ListMembersRequest(pool_id=setup.pool_id, protocol_port=[b2.port]))
    assert [x.id for x in filtered.members] == [m.id]
    setup.elb.delete_member(DeleteMemberRequest(pool_id=setup.pool_id, member_id=m.id))
    assert [x.protocol_port for x in setup.elb.list_members(ListMembersRequest(pool_id=setup.pool_id)).members] == [setup.backend.port]


@pytest.mark.parametrize("option, message_part", [
    (UpdatePoolOption(lb_algorithm="ROUND-ROBIN"), "lb_algorithm must be one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP"),
    (UpdatePoolOption(admin_state_up=False), "admin_state_up can only be true"),
    (UpdatePoolOption(session_persistence=UpdatePoolSessionPersistenceOption(type="HTTP_COOKIE")), "supports only SOURCE_IP"),
    (UpdatePoolOption(session_persistence=UpdatePoolSessionPersistenceOption(type="SOURCE_IP", persistence_timeout=61)), "1..60"),
    (UpdatePoolOption(slow_start=UpdatePoolSlowStartOption(enable=True, duration=10)), "30..1200"),
    (UpdatePoolOption(name="n" * 256), "0..255"),
])
def test_elb_pool_errors_raise_client_request_exception(setup, option, message_part):
    before = setup.elb.show_pool(ShowPoolRequest(pool_id=setup.pool_id)).pool.to_dict()
    with pytest.raises(hwexc.ClientRequestException) as info:
        setup.elb.update_pool(UpdatePoolRequest(pool_id=setup.pool_id, body=UpdatePoolRequestBody(pool=option)))
    e = info.value
    assert e.status_code == 400 and e.error_code == "ELB.8902"
    assert message_part in e.error_msg
    assert len(e.request_id) == 36
    assert setup.elb.show_pool(ShowPoolRequest(pool_id=setup.pool_id)).pool.to_dict() == before


def test_cookie_persistence_on_http_pool_is_applied_and_shown(daemon, port_range, flowgatectl_bin):
    """HTTP pools read and write cookies (issue 13): UpdatePool with
    HTTP_COOKIE and APP_COOKIE through the real SDK, and `flowgatectl pool
    update --persistence`, are applied and shown with the ELB field names;
    the HTTP mode then honours them (tests/test_http_pools.py has the traffic)."""
    ports = port_range(1)
    (control_port,) = port_range(1, proto=("tcp",))
    web = pool([member(9)], protocol="HTTP", name="web")
    d = daemon(config([listener(ports, web["id"])], [web], workers=1, control=control_section(control_port)))
    elb = elb_client(control_port, PROJECT_ID)
    before = elb.show_pool(ShowPoolRequest(pool_id=web["id"])).pool.to_dict()
    assert before["protocol"] == "HTTP" and before["session_persistence"] is None
    elb.update_pool(UpdatePoolRequest(pool_id=web["id"], body=UpdatePoolRequestBody(pool=UpdatePoolOption(
        session_persistence=UpdatePoolSessionPersistenceOption(type="HTTP_COOKIE", persistence_timeout=60)))))
    shown = elb.show_pool(ShowPoolRequest(pool_id=web["id"])).pool.to_dict()["session_persistence"]
    assert (shown["type"], shown["persistence_timeout"], shown["cookie_name"]) == ("HTTP_COOKIE", 60, None)
    elb.update_pool(UpdatePoolRequest(pool_id=web["id"], body=UpdatePoolRequestBody(pool=UpdatePoolOption(
        session_persistence=UpdatePoolSessionPersistenceOption(type="APP_COOKIE", cookie_name="JSESSIONID")))))
    shown = elb.show_pool(ShowPoolRequest(pool_id=web["id"])).pool.to_dict()["session_persistence"]
    assert (shown["type"], shown["cookie_name"]) == ("APP_COOKIE", "JSESSIONID")
    out = subprocess.run([str(flowgatectl_bin), "pool", "update", web["id"], "--persistence", "HTTP_COOKIE:30",
                          "--socket", d.control_socket], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    shown = elb.show_pool(ShowPoolRequest(pool_id=web["id"])).pool.to_dict()["session_persistence"]
    assert (shown["type"], shown["persistence_timeout"]) == ("HTTP_COOKIE", 30)


def test_update_pool_applies_connection_drain_and_refuses_what_it_does_not_apply(setup):
    """Every UpdatePool field the real SDK can send either does what it says or is refused (400 ELB.8902):
    connection_drain is applied and shown; member_deletion_protection_enable is not a Flowgate setting."""
    from huaweicloudsdkelb.v3 import ConnectionDrain
    elb, pool_id = setup.elb, setup.pool_id
    elb.update_pool(UpdatePoolRequest(pool_id=pool_id, body=UpdatePoolRequestBody(
        pool=UpdatePoolOption(connection_drain=ConnectionDrain(enable=True, timeout=30)))))
    shown = elb.show_pool(ShowPoolRequest(pool_id=pool_id)).pool.to_dict()
    assert shown["connection_drain"] == {"enable": True, "timeout": 30}
    with pytest.raises(hwexc.ClientRequestException) as info:
        elb.update_pool(UpdatePoolRequest(pool_id=pool_id, body=UpdatePoolRequestBody(
            pool=UpdatePoolOption(name="renamed", member_deletion_protection_enable=True))))
    assert (info.value.status_code, info.value.error_code) == (400, "ELB.8902")
    assert info.value.error_msg.startswith("Invalid input for field/attribute member_deletion_protection_enable. Value: true. "
                                           "member_deletion_protection_enable is not a field UpdatePool applies in Flowgate")
    assert elb.show_pool(ShowPoolRequest(pool_id=pool_id)).pool.to_dict() == shown


def test_elb_not_found_conflict_and_signature_errors(setup):
    with pytest.raises(hwexc.ClientRequestException) as info:
        setup.elb.show_pool(ShowPoolRequest(pool_id="00000000-0000-4000-8000-000000000000"))
    assert (info.value.status_code, info.value.error_code) == (404, "ELB.8904")
    assert info.value.error_msg == "pool 00000000-0000-4000-8000-000000000000 could not be found."
    with pytest.raises(hwexc.ClientRequestException) as info:
        setup.elb.create_member(CreateMemberRequest(pool_id=setup.pool_id, body=CreateMemberRequestBody(
            member=CreateMemberOption(address="127.0.0.1", protocol_port=setup.backend.port))))
    assert (info.value.status_code, info.value.error_code) == (409, "ELB.8907")
    with pytest.raises(hwexc.ClientRequestException) as info:
        setup.elb.create_member(CreateMemberRequest(pool_id=setup.pool_id, body=CreateMemberRequestBody(
            member=CreateMemberOption(address="not-an-ip", protocol_port=80))))
    assert (info.value.status_code, info.value.error_code) == (400, "ELB.8902")
    with pytest.raises(hwexc.ClientRequestException) as info:
        setup.elb.update_member(UpdateMemberRequest(pool_id=setup.pool_id, member_id="cccccccc-0000-4000-8000-000000000000",
                                                    body=UpdateMemberRequestBody(member=UpdateMemberOption(weight=1))))
    assert (info.value.status_code, info.value.error_code) == (404, "ELB.8904")
    wrong = elb_client(setup.control_port, PROJECT_ID, sk="not-the-secret")
    with pytest.raises(hwexc.ClientRequestException) as info:
        wrong.update_pool(UpdatePoolRequest(pool_id=setup.pool_id, body=UpdatePoolRequestBody(pool=UpdatePoolOption(name="x"))))
    assert info.value.status_code == 401
    unknown = elb_client(setup.control_port, PROJECT_ID, ak="HWAKNOBODY")
    with pytest.raises(hwexc.ClientRequestException) as info:
        unknown.show_pool(ShowPoolRequest(pool_id=setup.pool_id))
    assert info.value.status_code == 401
    assert setup.elb.show_pool(ShowPoolRequest(pool_id=setup.pool_id)).pool.name == "web"


# ---- flowgatectl over signed TCP, and the TCP endpoint's start-up rules ----------------------

def test_flowgatectl_signs_over_tcp(setup, flowgatectl_bin):
    from sdk.clients import HW_AK, HW_SK
    endpoint = f"http://127.0.0.1:{setup.control_port}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID=AWS_KEY, AWS_SECRET_ACCESS_KEY=AWS_SECRET,
               HUAWEICLOUD_SDK_AK=HW_AK, HUAWEICLOUD_SDK_SK=HW_SK)
    new = setup.ports[3]
    ok = subprocess.run([str(flowgatectl_bin), "listener", "update", setup.arn, "--port-ranges", str(new), "--json",
                         "--endpoint", endpoint], env=env, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["Listener"]["PortRanges"] == [{"FromPort": new, "ToPort": new}]
    pools = subprocess.run([str(flowgatectl_bin), "pool", "list", "--json", "--endpoint", endpoint], env=env,
                           capture_output=True, text=True, timeout=30)
    assert pools.returncode == 0, pools.stderr
    assert setup.pool_id in [p["id"] for p in json.loads(pools.stdout)["pools"]]
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    bad = subprocess.run([str(flowgatectl_bin), "listener", "show", setup.arn, "--endpoint", endpoint], env=env,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: InvalidSignatureException: ")


def test_non_loopback_tcp_without_credentials_refuses_to_start(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(2)
    cfg = config([listener(ports[:1], "p")], [pool([member(backend.port)], pool_id="p")])
    cfg["pools"][0]["id"] = cfg["accelerators"][0]["listeners"][0]["pool_id"] = "161835ef-0207-4300-ab5a-cf9c48f9f5ad"
    cfg["control"] = {"listen": f"0.0.0.0:{ports[1]}"}
    d = daemon(cfg, wait_ready=False)
    assert d.wait_exit() == 1
    assert "credentials" in d.stderr_text()


def test_allow_unsigned_on_loopback_tcp(daemon, tcp_backend, port_range):
    import http.client
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(2)
    cfg = config([listener(ports[:1], "161835ef-0207-4300-ab5a-cf9c48f9f5ad")],
                 [pool([member(backend.port)], pool_id="161835ef-0207-4300-ab5a-cf9c48f9f5ad")],
                 control=dict(control_section(ports[1]), allow_unsigned=True))
    d = daemon(cfg)
    conn = http.client.HTTPConnection("127.0.0.1", ports[1], timeout=10)
    conn.request("GET", f"/v3/{PROJECT_ID}/elb/pools")
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("X-Request-Id")
    assert json.loads(r.read())["pools"][0]["id"] == "161835ef-0207-4300-ab5a-cf9c48f9f5ad"
    # A signed request is still verified.
    bad = ga_client(ports[1], secret="wrong")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        bad.list_accelerators()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
