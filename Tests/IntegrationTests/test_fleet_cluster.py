"""A fleet on one etcd cluster (issue 14): written against the issue's config
contract, `cluster: {name, instance, etcd: {endpoints}}`, and the documented
behaviour (acknowledged after etcd committed and this instance applied; the
data plane keeps forwarding while etcd is gone; writes then fail with the API's
internal error and change nothing).

Marked `cluster` (pytest.ini): `pytest -m cluster`. A daemon that rejects the
`cluster` section FAILS these tests (it does not skip them). The bed is
harness/fleet_netns.py with an etcd namespace; etcd is harness/etcd.py's
3-member cluster, run inside that namespace (FleetBed.start_etcd).
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter, defaultdict

import pytest

from harness import DaemonError
from harness.etcd import etcd_cluster  # noqa: F401 (fixture)
from harness.fleet_netns import (FLEET_LISTENER, FLEET_POOL, VIP, VIP_PORT, HeldConnection, aws, cluster_section, elb,  # noqa: F401
                                 fleet_bed, fleet_config, local_members, member_of_new_connection,
                                 missing_prerequisites, wait_until)

pytestmark = [pytest.mark.cluster,
              pytest.mark.skipif(bool(missing_prerequisites()), reason="; ".join(missing_prerequisites()))]

CLUSTER = "edge"
CONVERGENCE_BOUND = 5.0   # seconds from acknowledgement on instance 1 to in force everywhere
PAYLOAD = os.urandom(1000)


def start_fleet(bed, etcd, backends, flowgated_bin, **config_kwargs):
    """Instance 1 first (it seeds the empty prefix from its file), then the
    others, all with the same file but `cluster.instance`."""
    def cfg(inst):
        return fleet_config(backends, cluster=cluster_section(CLUSTER, f"lb{inst.index}", etcd.endpoints),
                            **config_kwargs)
    try:
        bed.instances[0].start(cfg(bed.instances[0]), flowgated_bin)
        for inst in bed.instances[1:]:
            inst.start(cfg(inst), flowgated_bin)
    except DaemonError as e:
        pytest.fail(f"flowgated did not start with a `cluster` section (issue 14 contract): {e}", pytrace=False)
    return [inst.daemon for inst in bed.instances]


def converge(bed, in_force, what: str) -> dict[int, float]:
    """Seconds until in_force(instance) held on each instance, measured from
    now (just after the acknowledgement); fails past CONVERGENCE_BOUND."""
    times = {}
    for inst in bed.instances:
        t = wait_until(lambda: in_force(inst), CONVERGENCE_BOUND)
        assert t is not None, f"{what} not in force on instance {inst.index} within {CONVERGENCE_BOUND} s"
        times[inst.index] = t
    print(f"convergence of {what}: " + ", ".join(f"lb{i} {t * 1000:.0f} ms" for i, t in times.items()))
    return times


def new_connections(bed, sources, per_source: int):
    order = [s for _ in range(per_source) for s in sources]
    with bed.client.executor(16) as ex:
        results = list(ex.map(lambda s: member_of_new_connection(VIP, VIP_PORT, s, PAYLOAD), order))
    return [(s, flow, name, ok) for s, (flow, name, ok) in zip(order, results)]


def member_body(backend):
    return {"member": {"address": backend.host, "protocol_port": backend.port, "name": backend.name}}


@pytest.mark.timeout(120)
def test_updates_through_instance_1_are_in_force_on_every_instance(fleet_bed, etcd_cluster, flowgated_bin):
    bed = fleet_bed(instances=3, clients=4, backends=3, etcd_members=1)
    etcd = bed.start_etcd(etcd_cluster)
    backends = bed.start_backends("id")
    first = start_fleet(bed, etcd, backends[:2], flowgated_bin, lb_algorithm="ROUND_ROBIN")[0]
    for inst in bed.instances:
        assert set(local_members(inst, 4)) == {"m1", "m2"}

    # CreateMember: the new member takes connections on every instance.
    status, body = elb(first, "POST", f"pools/{FLEET_POOL}/members", member_body(backends[2]))
    assert status == 201, body
    assert "m3" in local_members(bed.instances[0], 3), "acknowledged before instance 1 applied it"
    converge(bed, lambda inst: set(local_members(inst, 3)) == {"m1", "m2", "m3"}, "CreateMember")

    # UpdatePool: SOURCE_IP hashing instead of round robin, on every
    # instance, and they agree on the member of the same client address.
    status, body = elb(first, "PUT", f"pools/{FLEET_POOL}", {"pool": {"lb_algorithm": "SOURCE_IP"}})
    assert status == 200, body
    converge(bed, lambda inst: len(set(local_members(inst, 6))) == 1, "UpdatePool")
    assert len({local_members(inst, 1)[0] for inst in bed.instances}) == 1

    # UpdateListener (AWS shape): a second port, listening on every instance
    # and reachable through the router.
    status, body = aws(first, "UpdateListener", {"ListenerArn": FLEET_LISTENER,
                                                 "PortRanges": [{"FromPort": VIP_PORT, "ToPort": VIP_PORT + 1}]})
    assert status == 200, body
    converge(bed, lambda inst: len(local_members(inst, 1, port=VIP_PORT + 1)) == 1, "UpdateListener")
    with bed.client.executor(4) as ex:
        got = list(ex.map(lambda s: member_of_new_connection(VIP, VIP_PORT + 1, s, PAYLOAD), bed.client_addresses))
    assert all(ok for *_, ok in got)

    # Describe agrees with the traffic on every instance.
    for inst in bed.instances:
        status, body = elb(inst.daemon, "GET", f"pools/{FLEET_POOL}")
        assert status == 200 and body["pool"]["lb_algorithm"] == "SOURCE_IP", body
        status, body = elb(inst.daemon, "GET", f"pools/{FLEET_POOL}/members")
        assert sorted(m["name"] for m in body["members"]) == ["m1", "m2", "m3"], body


@pytest.mark.timeout(120)
def test_round_robin_with_source_ip_persistence_agrees_across_instances(fleet_bed, etcd_cluster, flowgated_bin):
    bed = fleet_bed(instances=3, clients=100, backends=3, etcd_members=1)
    etcd = bed.start_etcd(etcd_cluster)
    backends = bed.start_backends("id")
    start_fleet(bed, etcd, backends, flowgated_bin, lb_algorithm="ROUND_ROBIN",
                session_persistence={"type": "SOURCE_IP", "persistence_timeout": 5})

    # One first connection per client: one instance picks, then shares the
    # choice (asynchronously, in batches: wait until etcd holds all of them).
    first = new_connections(bed, bed.client_addresses, 1)
    assert all(ok for *_, ok in first)
    prefix = f"/flowgate/{CLUSTER}/persist/"
    shared = wait_until(lambda: len(etcd.get_prefix(prefix)) >= 100, 10, interval=0.05)
    assert shared is not None, f"etcd holds {len(etcd.get_prefix(prefix))} of 100 persistence entries under {prefix}"
    print(f"persistence entries shared within {shared * 1000:.0f} ms")
    time.sleep(0.5)   # the instances' watches deliver them

    results = first + new_connections(bed, bed.client_addresses, 10)
    assert all(ok for *_, ok in results)
    members = defaultdict(set)
    for source, _, name, _ in results:
        members[source].add(name)
    split = {s: sorted(n) for s, n in members.items() if len(n) != 1}
    assert not split, f"{len(split)} clients reached more than one member, e.g. {dict(list(split.items())[:5])}"
    served = bed.wait_served([flow for _, flow, _, _ in results])
    instances_of = defaultdict(set)
    for source, flow, _, _ in results:
        instances_of[source].add(served[flow])
    assert sum(1 for s in instances_of.values() if len(s) >= 2) >= 90
    assert {b.name: b.bytes_received for b in backends} == {
        b.name: len(PAYLOAD) * sum(1 for r in results if r[2] == b.name) for b in backends}


def members_on(inst) -> list[str]:
    status, body = elb(inst.daemon, "GET", f"pools/{FLEET_POOL}/members")
    assert status == 200, body
    return sorted(m["name"] for m in body["members"])


@pytest.mark.timeout(180)
def test_etcd_faults_keep_forwarding_fail_writes_cleanly_and_lose_nothing(fleet_bed, etcd_cluster, flowgated_bin):
    bed = fleet_bed(instances=3, clients=20, backends=5, etcd_members=1)
    etcd = bed.start_etcd(etcd_cluster)
    backends = bed.start_backends("id")
    m1, m2, m3, m4, m5 = backends
    daemons = start_fleet(bed, etcd, [m1, m2], flowgated_bin, lb_algorithm="ROUND_ROBIN")
    held = [HeldConnection(bed.client.connect(VIP, VIP_PORT, source=s), s) for s in bed.client_addresses]

    def held_alive() -> bool:
        return all(h.exchange(PAYLOAD) for h in held)

    def forwarding() -> bool:
        return held_alive() and all(ok for *_, ok in new_connections(bed, bed.client_addresses, 1))

    assert forwarding()
    status, body = elb(daemons[0], "POST", f"pools/{FLEET_POOL}/members", member_body(m3))   # W1
    assert status == 201, body

    # One etcd member of three lost: nothing changes.
    etcd.kill(0)
    status, body = elb(daemons[1], "POST", f"pools/{FLEET_POOL}/members", member_body(m4))   # W2
    assert status == 201, f"a write with 2 of 3 etcd members up failed: {body}"
    converge(bed, lambda inst: members_on(inst) == ["m1", "m2", "m3", "m4"], "W2 with one etcd member down")
    assert forwarding()

    # Every etcd member lost: forwarding goes on, writes fail cleanly.
    etcd.kill_all()
    assert forwarding()
    status, body = elb(daemons[0], "POST", f"pools/{FLEET_POOL}/members", member_body(m5))
    assert status == 500 and body.get("error_code") == "ELB.8906" and body.get("error_msg"), (status, body)
    status, body = aws(daemons[2], "UpdateListener", {"ListenerArn": FLEET_LISTENER,
                                                     "PortRanges": [{"FromPort": VIP_PORT, "ToPort": VIP_PORT + 1}]})
    assert status == 500 and body.get("__type") == "InternalServiceErrorException", (status, body)
    for inst in bed.instances:   # nothing half-applied, anywhere
        assert members_on(inst) == ["m1", "m2", "m3", "m4"]
        with pytest.raises(ConnectionRefusedError):
            local_members(inst, 1, port=VIP_PORT + 1)
        assert set(local_members(inst, 8)) == {"m1", "m2", "m3", "m4"}
    assert forwarding()

    # etcd back: every instance reconnects and catches up; a write through
    # instance 3 (retried while its client reconnects) reaches everyone.
    etcd.restart_all()
    deadline = time.monotonic() + 20
    while True:
        status, body = elb(daemons[2], "PUT", f"pools/{FLEET_POOL}/members/{member_id_of(daemons[2], 'm1')}",
                           {"member": {"weight": 0}})                                          # W3
        if status == 200 or time.monotonic() > deadline:
            break
        assert status == 500, (status, body)
        time.sleep(0.5)
    assert status == 200, f"no write succeeded within 20 s of etcd's restart: {body}"
    converge(bed, lambda inst: set(local_members(inst, 8)) == {"m2", "m3", "m4"}, "W3 after etcd's restart")
    for inst in bed.instances:   # W1, W2, W3 all there; the failed writes nowhere
        assert members_on(inst) == ["m1", "m2", "m3", "m4"]
        with pytest.raises(ConnectionRefusedError):
            local_members(inst, 1, port=VIP_PORT + 1)
    assert held_alive()
    for h in held:
        h.close()


def member_id_of(d, name: str) -> str:
    status, body = elb(d, "GET", f"pools/{FLEET_POOL}/members")
    assert status == 200, body
    return next(m["id"] for m in body["members"] if m["name"] == name)


def race(*calls):
    """Run the calls at once (a barrier releases them together); their results."""
    barrier = threading.Barrier(len(calls))
    out = [None] * len(calls)

    def run(k, call):
        barrier.wait()
        out[k] = call()
    threads = [threading.Thread(target=run, args=(k, c)) for k, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


@pytest.mark.timeout(120)
def test_conflicting_writes_from_two_instances_one_wins_and_both_converge(fleet_bed, etcd_cluster, flowgated_bin):
    bed = fleet_bed(instances=2, clients=2, backends=2, etcd_members=1)
    etcd = bed.start_etcd(etcd_cluster)
    backends = bed.start_backends("id")
    d1, d2 = start_fleet(bed, etcd, backends, flowgated_bin, lb_algorithm="ROUND_ROBIN")

    # The same new member through both instances at once: exactly one 201,
    # the other the API's duplicate error, never two members nor none.
    # (weight 0: nothing is ever sent to these addresses.)
    for i in range(10):
        body = {"member": {"address": "198.18.201.1", "protocol_port": 9000 + i, "name": f"race{i}", "weight": 0}}
        out = race(lambda: elb(d1, "POST", f"pools/{FLEET_POOL}/members", body),
                   lambda: elb(d2, "POST", f"pools/{FLEET_POOL}/members", body))
        statuses = sorted(status for status, _ in out)
        assert statuses == [201, 409], out
        assert next(b for s, b in out if s == 409)["error_code"] == "ELB.8907", out

    # The same field changed to two values at once: both instances end with
    # one of the acknowledged values, the same one.
    mid = member_id_of(d1, "m2")
    out = race(lambda: elb(d1, "PUT", f"pools/{FLEET_POOL}/members/{mid}", {"member": {"weight": 7}}),
               lambda: elb(d2, "PUT", f"pools/{FLEET_POOL}/members/{mid}", {"member": {"weight": 9}}))
    acked = {body["member"]["weight"] for status, body in out if status == 200}
    assert acked and all(status in (200, 409) for status, _ in out), out

    def state(d):
        status, body = elb(d, "GET", f"pools/{FLEET_POOL}/members")
        assert status == 200, body
        return sorted((m["name"], m["address"], m["protocol_port"], m["weight"]) for m in body["members"])
    t = wait_until(lambda: state(d1) == state(d2), CONVERGENCE_BOUND)
    assert t is not None, (state(d1), state(d2))
    final = state(d1)
    assert [m for m in final if m[0].startswith("race")] == sorted(
        (f"race{i}", "198.18.201.1", 9000 + i, 0) for i in range(10))
    assert next(m[3] for m in final if m[0] == "m2") in acked, (final, out)
