"""The etcd client's failover and timeouts (docs/cluster.md §2), black-box:
an etcd "member" that accepts connections and never answers (a listening
socket nobody reads) costs dial_timeout before the next member is tried, and
with only such members a write fails within request_timeout."""
from __future__ import annotations

import socket
import time

from harness import member, single_pool_config
from harness.etcd import etcd_cluster  # noqa: F401 (fixture)
from harness.fleet import cluster_name, elb, with_cluster


def _silent_member(port_range) -> tuple[socket.socket, str]:
    s = socket.socket()
    port = port_range(1, "tcp")[0]
    s.bind(("127.0.0.1", port))
    s.listen(64)  # the kernel completes handshakes; nothing ever answers
    return s, f"http://127.0.0.1:{port}"


def test_a_silent_member_costs_dial_timeout_then_the_next_answers(etcd_cluster, daemon, tcp_backend, port_range):  # noqa: F811
    etcd = etcd_cluster()
    silent, url = _silent_member(port_range)
    try:
        a = tcp_backend("a", mode="id")
        cfg = single_pool_config([port_range(1)[0]], [member(a.port)])
        pid = cfg["pools"][0]["id"]
        t0 = time.monotonic()
        d = daemon(with_cluster(cfg, cluster_name(), "lb1", [url, *etcd.endpoints], dial_timeout=1, request_timeout=5))
        assert d.log_lines("cluster_seeded"), d.stderr_text()[-2000:]
        assert 1.0 <= time.monotonic() - t0 < 5.0
        t0 = time.monotonic()
        status, body = elb(d, "PUT", f"/pools/{pid}", {"pool": {"lb_algorithm": "LEAST_CONNECTIONS"}})
        assert status == 200, body
        assert time.monotonic() - t0 < 1.0  # the member that answered is tried first now
    finally:
        silent.close()


def test_only_silent_members_writes_fail_within_request_timeout(daemon, tcp_backend, port_range):
    silent, url = _silent_member(port_range)
    try:
        a = tcp_backend("a", mode="id")
        cfg = single_pool_config([port_range(1)[0]], [member(a.port)])
        pid = cfg["pools"][0]["id"]
        d = daemon(with_cluster(cfg, cluster_name(), "lb1", [url], dial_timeout=1, request_timeout=2))
        assert d.log_lines("cluster_offline")
        t0 = time.monotonic()
        status, body = elb(d, "PUT", f"/pools/{pid}", {"pool": {"lb_algorithm": "LEAST_CONNECTIONS"}})
        took = time.monotonic() - t0
        assert status == 500 and body["error_code"] == "ELB.8906", body
        assert 0.9 <= took < 3.5, took
        assert elb(d, "GET", f"/pools/{pid}")[1]["pool"]["lb_algorithm"] == "ROUND_ROBIN"
    finally:
        silent.close()
