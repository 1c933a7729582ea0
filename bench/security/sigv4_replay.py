"""Issue 11 item 1: SigV4 replay with another body.

A no-op UpdateListener (the listener's own port range) is signed with
botocore's SigV4Auth and sent; then the same headers are replayed with a body
that moves the listener to another port, plus `X-Amz-Content-Sha256` set to
the original body's hash. Prints both statuses and whether the listener moved
(DescribeListener over the Unix socket, and whether the new port listens).

    python bench/security/sigv4_replay.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import json

import common as c


def main(args) -> None:
    data_ports = c.ports(2)
    (control_port,) = c.ports(1)
    cfg = c.single_pool_config(data_ports[:1], [c.member(c.ports(1)[0])], workers=1,
                               control=c.control_section(control_port))
    d = c.daemon(args, cfg)
    arn = c.listener_arn(d)
    before = c.describe_listener(d, arn)["PortRanges"]
    original = json.dumps({"ListenerArn": arn, "PortRanges": [{"FromPort": data_ports[0], "ToPort": data_ports[0]}]}).encode()
    headers = c.sigv4_headers(control_port, "UpdateListener", original)
    first, _, first_body = c.tcp_request(control_port, "POST", "/", original, headers)
    forged = json.dumps({"ListenerArn": arn, "PortRanges": [{"FromPort": data_ports[1], "ToPort": data_ports[1]}]}).encode()
    replay_headers = dict(headers)
    replay_headers["X-Amz-Content-Sha256"] = c.sha256_hex(original)
    status, hdrs, body = c.tcp_request(control_port, "POST", "/", forged, replay_headers)
    after = c.describe_listener(d, arn)["PortRanges"]
    moved = after != before
    listening = data_ports[1] in c.tcp_listening_ports()
    c.result("1 sigv4-replay", original_status=first, replay_status=status,
             replay_error=hdrs.get("x-amzn-errortype", "-"), listener_moved=moved,
             new_port_listening=listening, ports_before=before[0]["FromPort"], ports_after=after[0]["FromPort"],
             verdict="VULNERABLE" if moved else "refused")


if __name__ == "__main__":
    c.run("1 sigv4-replay", main, c.parse_args(__doc__, time_limit=60))
