"""Control-plane security against the spawned daemon (issue 11 §1, §3): a
captured signed change cannot carry another body or be replayed, and /metrics
stays parseable and bounded under hostile X-Amz-Target values and is signed
over TCP unless the endpoint is loopback with allow_unsigned."""
from __future__ import annotations

import hashlib
import http.client
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("botocore")

import botocore.auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from harness import config, listener, member, pool, promtool_check, tcp_exchange  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sdk.clients import AWS_KEY, AWS_SECRET, REGION, control_section  # noqa: E402

TARGET = "GlobalAccelerator_V20180706."


def signed_update(port: int, body: bytes) -> dict[str, str]:
    """Headers of an UpdateListener signed by botocore's SigV4Auth, as boto3 sends it."""
    req = AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body,
                     headers={"X-Amz-Target": TARGET + "UpdateListener", "Content-Type": "application/x-amz-json-1.1"})
    botocore.auth.SigV4Auth(Credentials(AWS_KEY, AWS_SECRET), "globalaccelerator", REGION).add_auth(req)
    return dict(req.headers.items())


def post(port: int, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def describe(d, arn: str) -> dict:
    status, _, body = d.request("POST", "/", json.dumps({"ListenerArn": arn}),
                                {"X-Amz-Target": TARGET + "DescribeListener", "Content-Type": "application/x-amz-json-1.1"})
    assert status == 200, body
    return json.loads(body)["Listener"]


@pytest.fixture
def signed_daemon(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(2)
    (control_port,) = port_range(1, proto=("tcp",))
    p = pool([member(backend.port)], name="web")
    cfg = config([listener(ports[0:1], p["id"])], [p], workers=1, control=control_section(control_port))
    d = daemon(cfg)
    return d, control_port, cfg["accelerators"][0]["listeners"][0]["ListenerArn"], ports


def test_captured_update_with_another_body_and_the_original_hash_is_refused(signed_daemon):
    d, port, arn, ports = signed_daemon
    noop = json.dumps({"ListenerArn": arn, "PortRanges": [{"FromPort": ports[0], "ToPort": ports[0]}]},
                      separators=(",", ":")).encode()
    headers = signed_update(port, noop)
    status, answer = post(port, headers, noop)
    assert status == 200, answer
    before = describe(d, arn)

    # The attacker's copy: the same signed headers, a body that moves the listener,
    # and X-Amz-Content-Sha256 claiming the original body's hash.
    moved = json.dumps({"ListenerArn": arn, "PortRanges": [{"FromPort": ports[1], "ToPort": ports[1]}]},
                       separators=(",", ":")).encode()
    forged = dict(headers, **{"X-Amz-Content-Sha256": hashlib.sha256(noop).hexdigest()})
    status, answer = post(port, forged, moved)
    assert status == 403, answer
    assert answer["__type"] == "InvalidSignatureException"
    assert answer["message"] == "X-Amz-Content-Sha256 does not match the SHA-256 of the request body"

    # The unmodified request again, within the 15-minute window: a replay.
    status, answer = post(port, headers, noop)
    assert status == 403, answer
    assert answer["__type"] == "InvalidSignatureException"
    assert answer["message"].startswith("request replayed: this signature was already accepted at ")

    assert describe(d, arn) == before
    assert tcp_exchange(ports[0], b"still here") == b"still here"


HOSTILE = 'Evil"} 1\\'


def test_hostile_targets_leave_metrics_parseable_and_bounded(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    p = pool([member(backend.port)], name="web")
    d = daemon(config([listener(ports, p["id"])], [p], workers=1))
    _, _, baseline = d.request("GET", "/metrics")
    # 8,000 bytes: each target line stays within the control server's 8 KiB header line limit and reaches the router.
    targets = [HOSTILE] + [f"{i:04d}" + "x" * (8000 - 4) for i in range(300)]
    for t in targets:
        status, _, _ = d.request("POST", "/", "{}", {"X-Amz-Target": t, "Content-Type": "application/x-amz-json-1.1"})
        assert status == 400
    status, _, body = d.request("GET", "/metrics")
    assert status == 200
    text = body.decode()
    check = promtool_check(text)
    assert check.returncode in (0, 3), check.stdout + check.stderr  # 3 = lint remarks only; 1 = parse error
    assert 'flowgate_control_requests_total{operation="unknown",status="400"} 301' in text.splitlines()
    # Before the fix: 9.6 MB after these 300 targets; now the scrape grows by one series.
    assert len(body) < len(baseline) + 1024, (len(baseline), len(body))
    assert len(body) < 64 * 1024
    # A longer target is refused by the server itself (431) before it is routed or counted.
    status, _, reply = d.request("POST", "/", "{}", {"X-Amz-Target": "y" * (32 * 1024), "Content-Type": "application/x-amz-json-1.1"})
    assert status == 431, reply


def test_unsigned_metrics_over_tcp(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    (control_port,) = port_range(1, proto=("tcp",))
    p = pool([member(backend.port)], name="web")
    cfg = config([listener(ports, p["id"])], [p], workers=1, control=control_section(control_port))
    d = daemon(cfg)
    status, body = get(control_port, "/metrics")
    assert status == 401, body
    assert json.loads(body)["error_code"] == "APIGW.0301"
    assert cfg["accelerators"][0]["AcceleratorArn"].encode() not in body
    # The Unix socket stays open to its owner.
    assert d.request("GET", "/metrics")[0] == 200
    # A loopback endpoint with allow_unsigned serves the unsigned scrape.
    d.terminate()
    cfg["control"]["allow_unsigned"] = True
    d2 = daemon(cfg)
    status, body = get(control_port, "/metrics")
    assert status == 200, body
    assert b"flowgate_control_requests_total" in body
    d2.terminate()


def test_identical_flowgatectl_changes_in_one_second_are_not_replays(signed_daemon, flowgatectl_bin):
    """flowgatectl signs a random nonce: the same command run twice within one second is two
    signatures, not a replay (without it the second would carry the first one's signature)."""
    import os
    import subprocess

    from sdk.clients import HW_AK, HW_SK
    d, port, arn, ports = signed_daemon
    env = dict(os.environ, AWS_ACCESS_KEY_ID=AWS_KEY, AWS_SECRET_ACCESS_KEY=AWS_SECRET,
               HUAWEICLOUD_SDK_AK=HW_AK, HUAWEICLOUD_SDK_SK=HW_SK)
    pool_id = d.config["pools"][0]["id"]
    commands = [["listener", "update", arn, "--port-ranges", str(ports[0])],
                ["pool", "update", pool_id, "--lb-algorithm", "LEAST_CONNECTIONS", "--project-id", d.config["project_id"]]]
    for args in commands:
        for _ in range(3):
            out = subprocess.run([str(flowgatectl_bin), *args, "--endpoint", f"http://127.0.0.1:{port}"], env=env,
                                 capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, out.stderr
