"""A fleet on one real 3-member etcd (issue 14, docs/cluster.md): two or three
flowgated on loopback with the same cluster.name, different control sockets
and state files. Seeding and take-over of the prefix, an update through one
instance in force on the others by traffic, racing writes, etcd faults, and
starts while etcd is down."""
from __future__ import annotations

import json
import threading

import pytest

from harness import member, pool, listener, config, single_pool_config, tcp_listening_ports
from harness.etcd import etcd_cluster  # noqa: F401 (fixture)
from harness.fleet import (aws, cluster_name, elb, member_set, members, served_by, wait_until, with_cluster)


def _fleet_config(port: int, backend_port: int):
    return single_pool_config([port], [member(backend_port, name="a")])


def _pool_id(cfg) -> str:
    return cfg["pools"][0]["id"]


def test_seed_then_take_over(etcd_cluster, daemon, tcp_backend, port_range):  # noqa: F811
    etcd = etcd_cluster()
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    p1, p2 = port_range(1)[0], port_range(1)[0]
    name = cluster_name()
    cfg1 = _fleet_config(p1, a.port)
    d1 = daemon(with_cluster(cfg1, name, "lb1", etcd.endpoints))
    assert d1.log_lines("cluster_seeded"), d1.stderr_text()[-2000:]
    stored = json.loads(etcd.get(f"/flowgate/{name}/config"))
    assert stored["pools"][0]["id"] == _pool_id(cfg1)

    # The second instance's file names another pool and port: etcd's objects win.
    cfg2 = _fleet_config(p2, b.port)
    d2 = daemon(with_cluster(cfg2, name, "lb2", etcd.endpoints))
    wait_until(lambda: d2.log_lines("cluster_objects_taken"), what="lb2 takes etcd's objects")
    assert not d2.log_lines("cluster_seeded")
    wait_until(lambda: p2 not in tcp_listening_ports(), what="lb2 drops its file's listener")
    assert served_by(p1) == {"a"}
    status, _ = elb(d2, "GET", f"/pools/{_pool_id(cfg1)}")
    assert status == 200
    status, _ = elb(d2, "GET", f"/pools/{_pool_id(cfg2)}")
    assert status == 404

    # SIGHUP re-reads the file's daemon settings only: the objects in force stay the cluster's.
    d2.sighup(wait=True)
    assert elb(d2, "GET", f"/pools/{_pool_id(cfg1)}")[0] == 200
    assert elb(d2, "GET", f"/pools/{_pool_id(cfg2)}")[0] == 404
    assert p2 not in tcp_listening_ports()


def test_update_through_one_in_force_on_all(etcd_cluster, daemon, tcp_backend, port_range):  # noqa: F811
    etcd = etcd_cluster()
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    port = port_range(1)[0]
    name = cluster_name()
    cfg = _fleet_config(port, a.port)
    pid = _pool_id(cfg)
    d1 = daemon(with_cluster(cfg, name, "lb1", etcd.endpoints))
    d2 = daemon(with_cluster(cfg, name, "lb2", etcd.endpoints))
    d3 = daemon(with_cluster(cfg, name, "lb3", etcd.endpoints))
    assert served_by(port) == {"a"}

    status, body = elb(d1, "POST", f"/pools/{pid}/members", {"member": {"address": "127.0.0.1", "protocol_port": b.port}})
    assert status == 201, body
    member_a = next(m["id"] for m in members(d1, pid) if m["protocol_port"] == a.port)
    status, body = elb(d1, "PUT", f"/pools/{pid}/members/{member_a}", {"member": {"weight": 0}})
    assert status == 200, body
    want = {("127.0.0.1", a.port, 0), ("127.0.0.1", b.port, 1)}
    for d in (d2, d3):
        wait_until(lambda: member_set(d, pid) == want, what=f"{d!r} describes the update: {member_set(d, pid)} {member_set(d1, pid)} {etcd.get_prefix('/flowgate/')}")
    # Every instance's socket gets a share of new connections: all reach b.
    wait_until(lambda: served_by(port, 40) == {"b"}, what="b serves every connection on every instance")


def test_racing_writes_one_wins_both_converge(etcd_cluster, daemon, tcp_backend, port_range):  # noqa: F811
    etcd = etcd_cluster()
    a = tcp_backend("a", mode="id")
    port = port_range(1)[0]
    name = cluster_name()
    cfg = _fleet_config(port, a.port)
    pid = _pool_id(cfg)
    d1 = daemon(with_cluster(cfg, name, "lb1", etcd.endpoints))
    d2 = daemon(with_cluster(cfg, name, "lb2", etcd.endpoints))
    for round_ in range(5):
        # The same address:port through both instances at once: one 201, one 409.
        target = 20000 + round_
        answers: list[int] = []
        go = threading.Barrier(2)

        def create(d):
            go.wait()
            status, _ = elb(d, "POST", f"/pools/{pid}/members", {"member": {"address": "127.0.0.2", "protocol_port": target}})
            answers.append(status)

        threads = [threading.Thread(target=create, args=(d,)) for d in (d1, d2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers) == [201, 409], answers
    wait_until(lambda: member_set(d1, pid) == member_set(d2, pid), what="both instances converge")
    assert len(member_set(d1, pid)) == 6
    stored = json.loads(etcd.get(f"/flowgate/{name}/config"))
    assert len(stored["pools"][0]["members"]) == 6


def test_etcd_faults_forwarding_goes_on_writes_fail_cleanly_then_catch_up(etcd_cluster, daemon, tcp_backend, port_range):  # noqa: F811
    etcd = etcd_cluster()
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    port = port_range(1)[0]
    name = cluster_name()
    cfg = _fleet_config(port, a.port)
    pid = _pool_id(cfg)
    cl = {"dial_timeout": 1, "request_timeout": 3}
    d1 = daemon(with_cluster(cfg, name, "lb1", etcd.endpoints, **cl))
    d2 = daemon(with_cluster(cfg, name, "lb2", etcd.endpoints, **cl))
    arn = cfg["accelerators"][0]["listeners"][0]["ListenerArn"]

    etcd.kill(0)  # one member of three: nothing changes
    status, body = elb(d1, "POST", f"/pools/{pid}/members", {"member": {"address": "127.0.0.1", "protocol_port": b.port, "weight": 0}})
    assert status == 201, body
    wait_until(lambda: ("127.0.0.1", b.port, 0) in member_set(d2, pid), what="write with one etcd member down reaches lb2")

    etcd.kill_all()
    before = (member_set(d1, pid), member_set(d2, pid))
    status, body = elb(d1, "POST", f"/pools/{pid}/members", {"member": {"address": "127.0.0.3", "protocol_port": 9}})
    assert status == 500, body
    status, body = aws(d2, "UpdateListener", {"ListenerArn": arn, "ClientAffinity": "SOURCE_IP"})
    assert status == 500 and body.get("__type", "").endswith("InternalServiceErrorException"), body
    assert (member_set(d1, pid), member_set(d2, pid)) == before  # nothing half-applied
    assert served_by(port) == {"a"}  # forwarding goes on on the last snapshot

    etcd.restart_all()
    # The write acknowledged with one member down survived losing all three.
    stored = json.loads(etcd.get(f"/flowgate/{name}/config"))
    assert b.port in [m.get("protocol_port") for m in stored["pools"][0]["members"]]
    member_b = next(m["id"] for m in members(d1, pid) if m["protocol_port"] == b.port)
    def write_ok():
        status, _ = elb(d2, "PUT", f"/pools/{pid}/members/{member_b}", {"member": {"weight": 5}})
        return status == 200
    wait_until(write_ok, timeout=20, interval=0.5, what="writes work again after etcd is back")
    wait_until(lambda: ("127.0.0.1", b.port, 5) in member_set(d1, pid), timeout=20, what="lb1 catches up")


def test_start_while_etcd_down_serves_cache_then_catches_up(etcd_cluster, daemon, tcp_backend, port_range):  # noqa: F811
    etcd = etcd_cluster()
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    port = port_range(1)[0]
    name = cluster_name()
    cfg = _fleet_config(port, a.port)
    pid = _pool_id(cfg)
    cl = {"dial_timeout": 1, "request_timeout": 2}
    d1 = daemon(with_cluster(cfg, name, "lb1", etcd.endpoints, **cl))
    d2 = daemon(with_cluster(cfg, name, "lb2", etcd.endpoints, **cl))
    status, body = elb(d1, "POST", f"/pools/{pid}/members", {"member": {"address": "127.0.0.1", "protocol_port": b.port}})
    assert status == 201, body
    member_a = next(m["id"] for m in members(d1, pid) if m["protocol_port"] == a.port)
    assert elb(d1, "PUT", f"/pools/{pid}/members/{member_a}", {"member": {"weight": 0}})[0] == 200
    wait_until(lambda: member_set(d2, pid) == member_set(d1, pid), what="lb2 converges")

    d2.terminate()
    etcd.kill_all()
    d2.start()  # etcd down: starts from the cached snapshot in its state file
    assert d2.log_lines("cluster_offline")
    assert member_set(d2, pid) == {("127.0.0.1", a.port, 0), ("127.0.0.1", b.port, 1)}
    d1.terminate()  # only lb2 serves the port now
    assert served_by(port) == {"b"}

    etcd.restart_all()
    d1.start()
    assert elb(d1, "PUT", f"/pools/{pid}/members/{member_a}", {"member": {"weight": 3}})[0] == 200
    wait_until(lambda: ("127.0.0.1", a.port, 3) in member_set(d2, pid), timeout=20, what="lb2 catches up after etcd returns")


def test_cluster_status_and_an_update_one_instance_cannot_apply(etcd_cluster, daemon, tcp_backend, port_range,  # noqa: F811
                                                              flowgatectl_bin, flowgated_bin, tmp_path):
    import subprocess
    etcd = etcd_cluster()
    a = tcp_backend("a", mode="id")
    port = port_range(1)[0]
    wide = port_range(200, "tcp")
    name = cluster_name()
    cfg = _fleet_config(port, a.port)
    # lb2 runs with 400 descriptors: a 200-port listener does not fit its
    # budget (DescriptorBudget), while lb1 (the default limit) binds it. Both
    # bind a socket per port (with `lookup`, one socket serves every port and
    # the budget is never reached).
    cfg["tuning"] = {**(cfg.get("tuning") or {}), "port_ranges": "per_port"}
    small = tmp_path / "flowgated-small-nofile"
    small.write_text(f"#!/bin/sh\nexec prlimit --nofile=400:400 {flowgated_bin} \"$@\"\n")
    small.chmod(0o755)
    d1 = daemon(with_cluster(cfg, name, "lb1", etcd.endpoints))
    d2 = daemon(with_cluster(cfg, name, "lb2", etcd.endpoints), binary=str(small))
    arn = cfg["accelerators"][0]["listeners"][0]["ListenerArn"]

    status, body = aws(d1, "UpdateListener", {"ListenerArn": arn, "PortRanges": [{"FromPort": wide[0], "ToPort": wide[-1]}]})
    assert status == 200, body

    def status_of(d):
        out = subprocess.run([str(flowgatectl_bin), "cluster", "status", "--socket", d.control_socket, "--json"],
                             capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def lb2_reported():
        rows = {i["instance"]: i for i in status_of(d1).get("instances", [])}
        return "lb2" in rows and rows["lb2"]["not_applied"] and rows["lb2"]["lag"] > 0 and rows["lb1"]["lag"] == 0
    wait_until(lb2_reported, what="lb1's cluster status shows what lb2 could not apply")
    mine = status_of(d2)
    assert mine["apply_failures"] >= 1 and "descriptors" in mine["not_applied"][0]["error"], mine
    assert d2.log_lines("cluster_apply_failed")
    # lb2 keeps its previous snapshot: the old port is still served (only by lb2 now).
    assert served_by(port) == {"a"}
    assert served_by(wide[7]) == {"a"}  # lb1 serves the new range

    table = subprocess.run([str(flowgatectl_bin), "cluster", "status", "--socket", d1.control_socket],
                           capture_output=True, text=True, timeout=20).stdout
    assert "INSTANCE" in table and "lb1" in table and "lb2" in table and "descriptors" in table, table

    from harness import parse_metrics, metric_sum, promtool_check
    status, _, raw = d2.request("GET", "/metrics")
    assert status == 200
    samples = parse_metrics(raw.decode())
    assert metric_sum(samples, "flowgate_cluster_apply_failures_total") >= 1
    assert metric_sum(samples, "flowgate_cluster_etcd_reachable") == 1
    assert promtool_check(raw.decode()).returncode == 0


def test_etcd_authentication(etcd_cluster, daemon, tcp_backend, port_range):  # noqa: F811
    etcd = etcd_cluster()
    for path, body in (("auth/role/add", {"name": "root"}), ("auth/user/add", {"name": "root", "password": "pw1"}),
                       ("auth/user/grant", {"user": "root", "role": "root"}), ("auth/enable", {})):
        etcd.call(path, body)
    a = tcp_backend("a", mode="id")
    port = port_range(1)[0]
    name = cluster_name()
    cfg = _fleet_config(port, a.port)
    cl = {"dial_timeout": 1, "request_timeout": 2}
    d1 = daemon(with_cluster(cfg, name, "lb1", etcd.endpoints, username="root", password="pw1", **cl))
    assert d1.log_lines("cluster_seeded"), d1.stderr_text()[-2000:]
    status, body = elb(d1, "PUT", f"/pools/{_pool_id(cfg)}", {"pool": {"lb_algorithm": "LEAST_CONNECTIONS"}})
    assert status == 200, body
    # Without credentials etcd refuses: the instance starts offline, and its writes fail cleanly.
    d2 = daemon(with_cluster(cfg, name, "lb2", etcd.endpoints, **cl))
    assert d2.log_lines("cluster_offline")
    status, body = elb(d2, "PUT", f"/pools/{_pool_id(cfg)}", {"pool": {"lb_algorithm": "ROUND_ROBIN"}})
    assert status == 500, body
