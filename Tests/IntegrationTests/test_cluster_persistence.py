"""Shared SOURCE_IP session persistence across a fleet (issue 14,
docs/cluster.md §7): a ROUND_ROBIN pool with SOURCE_IP persistence on two
instances sharing the listener port (SO_REUSEPORT spreads each client's
connections over both). A client's first choice is written to etcd in the
next batch (100 ms) and learnt by the other instance, so after it every
connection of that client reaches the same member on either instance."""
from __future__ import annotations

import json
import time

from harness import member, pool, listener, config, tcp_member_name
from harness.etcd import etcd_cluster  # noqa: F401 (fixture)
from harness.fleet import cluster_name, with_cluster, wait_until
import subprocess

CLIENTS = 40
CONNECTIONS = 10


def test_round_robin_persistence_agrees_across_instances(etcd_cluster, daemon, tcp_backend, port_range, flowgatectl_bin):  # noqa: F811
    etcd = etcd_cluster()
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    port = port_range(1)[0]
    p = pool([member(a.port, name="a"), member(b.port, name="b")], lb_algorithm="ROUND_ROBIN",
             session_persistence={"type": "SOURCE_IP", "persistence_timeout": 5})
    cfg = config([listener([port], p["id"])], [p])
    name = cluster_name()
    d1 = daemon(with_cluster(cfg, name, "lb1", etcd.endpoints))
    d2 = daemon(with_cluster(cfg, name, "lb2", etcd.endpoints))

    sources = [f"127.0.{10 + i // 200}.{1 + i % 200}" for i in range(CLIENTS)]
    first = {src: tcp_member_name(port, source=src) for src in sources}
    time.sleep(0.5)  # one batch (100 ms) and the watch
    seen = {src: {tcp_member_name(port, source=src) for _ in range(CONNECTIONS)} for src in sources}
    split = {src: (first[src], sorted(s)) for src, s in seen.items() if s != {first[src]}}
    assert not split, f"clients reaching another member than their first: {split}"
    assert set(first.values()) == {"a", "b"}  # round robin did spread the clients

    stored = etcd.get_prefix(f"/flowgate/{name}/persist/{p['id']}/")
    assert len(stored) == CLIENTS
    lease = etcd.call("kv/range", {"key": __import__("base64").b64encode(next(iter(stored)).encode()).decode()})["kvs"][0]
    assert int(lease.get("lease", 0)) != 0  # kept under a lease of the persistence timeout

    out = subprocess.run([str(flowgatectl_bin), "cluster", "status", "--socket", d1.control_socket, "--json"],
                         capture_output=True, text=True, timeout=20)
    persistence = json.loads(out.stdout)["persistence"]
    assert persistence["writes"] >= 1 and persistence["batches"] <= persistence["writes"]


def test_a_restarted_instance_knows_the_fleets_clients(etcd_cluster, daemon, tcp_backend, port_range):  # noqa: F811
    etcd = etcd_cluster()
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    port = port_range(1)[0]
    p = pool([member(a.port, name="a"), member(b.port, name="b")], lb_algorithm="LEAST_CONNECTIONS",
             session_persistence={"type": "SOURCE_IP", "persistence_timeout": 5})
    cfg = config([listener([port], p["id"])], [p])
    name = cluster_name()
    d1 = daemon(with_cluster(cfg, name, "lb1", etcd.endpoints))
    d2 = daemon(with_cluster(cfg, name, "lb2", etcd.endpoints))
    sources = [f"127.0.{40 + i // 200}.{1 + i % 200}" for i in range(CLIENTS)]
    first = {src: tcp_member_name(port, source=src) for src in sources}
    assert set(first.values()) == {"a", "b"}
    wait_until(lambda: len(etcd.get_prefix(f"/flowgate/{name}/persist/")) == CLIENTS, what="every choice in etcd")

    d2.kill9()
    d2.start()  # reads every shared entry before it is ready
    d1.terminate()  # now only the restarted instance serves the port
    again = {src: tcp_member_name(port, source=src) for src in sources}
    assert again == first
