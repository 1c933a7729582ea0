"""GET /metrics (issue 6): the scrape passes `promtool check metrics`, and its
counters equal the traffic the test sent, byte for byte."""
from __future__ import annotations

import json
import os
import socket

import pytest

from harness import config, listener, member, pool, tcp_exchange
from harness.metrics import metric_sum, parse_metrics, promtool_check, promtool_path


def scrape(d) -> str:
    status, headers, body = d.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    return body.decode()


def udp_ask(port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(payload, ("127.0.0.1", port))
        return s.recv(65536)


@pytest.mark.timeout(60)
def test_scrape_passes_promtool_and_counts_match_the_traffic(daemon, tcp_backend, udp_backend, port_range):
    tcp_port, udp_port = port_range(2)
    echo = tcp_backend("echo", mode="echo")
    uecho = udp_backend("uecho", mode="echo")
    tp = pool([member(echo.port)], protocol="TCP")
    up = pool([member(uecho.port)], protocol="UDP")
    tl = listener([tcp_port], tp["id"], protocol="TCP")
    ul = listener([udp_port], up["id"], protocol="UDP")
    d = daemon(config([tl, ul], [tp, up], workers=2))
    tcp_arn, udp_arn = [l["ListenerArn"] for l in d.config["accelerators"][0]["listeners"]]

    sizes = [1, 1000, 123_457]
    for n in sizes:
        data = os.urandom(n)
        assert tcp_exchange(tcp_port, data) == data
    datagrams = [os.urandom(n) for n in (1, 100, 1400, 9000)]
    # One client socket: one UDP flow.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        for g in datagrams:
            s.sendto(g, ("127.0.0.1", udp_port))
            assert s.recv(65536) == g

    # (ListMembers is also the control request the scrape counts.)
    tcp_member = json.loads(d.request("GET", f"/v3/{d.config['project_id']}/elb/pools/{tp['id']}/members")[2])["members"][0]["id"]
    text = scrape(d)
    if promtool_path() is None:
        pytest.fail("promtool missing: install Debian's prometheus package (.ci/setup.sh does)")
    check = promtool_check(text)
    assert check.returncode == 0, check.stdout + check.stderr
    samples = parse_metrics(text)

    total = sum(sizes)
    assert metric_sum(samples, "flowgate_listener_flows_opened_total", listener=tcp_arn) == 3
    assert metric_sum(samples, "flowgate_listener_flows_active", listener=tcp_arn) == 0
    assert metric_sum(samples, "flowgate_listener_bytes_total", listener=tcp_arn, direction="client_to_member") == total
    assert metric_sum(samples, "flowgate_listener_bytes_total", listener=tcp_arn, direction="member_to_client") == total
    assert metric_sum(samples, "flowgate_member_bytes_total", pool=tp["id"], member=tcp_member, direction="client_to_member") == total
    assert metric_sum(samples, "flowgate_member_flows_opened_total", pool=tp["id"], member=tcp_member) == 3
    assert metric_sum(samples, "flowgate_member_picks_total", pool=tp["id"], member=tcp_member) == 3
    assert metric_sum(samples, "flowgate_member_connect_failures_total", pool=tp["id"], member=tcp_member) == 0
    assert metric_sum(samples, "flowgate_member_up", pool=tp["id"], member=tcp_member) == 1
    assert metric_sum(samples, "flowgate_member_slow_start_fraction", pool=tp["id"], member=tcp_member) == 1
    assert metric_sum(samples, "flowgate_pool_bytes_total", pool=tp["id"], direction="member_to_client") == total

    ubytes = sum(len(g) for g in datagrams)
    assert metric_sum(samples, "flowgate_listener_flows_opened_total", listener=udp_arn) == 1
    assert metric_sum(samples, "flowgate_listener_flows_active", listener=udp_arn) == 1
    for direction in ("client_to_member", "member_to_client"):
        assert metric_sum(samples, "flowgate_listener_datagrams_total", listener=udp_arn, direction=direction) == len(datagrams)
        assert metric_sum(samples, "flowgate_listener_bytes_total", listener=udp_arn, direction=direction) == ubytes
        assert metric_sum(samples, "flowgate_member_datagrams_total", pool=up["id"], direction=direction) == len(datagrams)
        assert metric_sum(samples, "flowgate_pool_datagrams_total", pool=up["id"], direction=direction) == len(datagrams)
    # Per-worker loop lag is there for each of the two workers.
    assert {s.labels["worker"] for s in samples if s.name == "flowgate_worker_loop_lag_seconds"} == {"0", "1"}
    # The control plane's own family is in the same scrape.
    assert any(s.name == "flowgate_control_requests_total" for s in samples)
