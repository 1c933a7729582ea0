"""A fleet of standalone flowgated instances behind ECMP (issue 14, docs/fleet-testing.md).

Needs no etcd: instances started on the same config agree on every client's
member through the SOURCE_IP algorithm's Maglev table alone (docs/architecture.md
§3.4). The bed (harness/fleet_netns.py) is real: a router namespace spreads
connections to the VIP over three instance namespaces by an L4 hash over a
resilient nexthop group; clients have 100 source addresses; members are
TcpBackends in mode `id` (name, then echo) in a backend namespace.
"""
from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from harness.fleet_netns import (VIP, VIP_PORT, FleetBed, HeldConnection, clean_leftovers,  # noqa: F401
                                 fleet_bed, fleet_config, member_of_new_connection, missing_prerequisites)

pytestmark = pytest.mark.skipif(bool(missing_prerequisites()), reason="; ".join(missing_prerequisites()))

PAYLOAD = os.urandom(1000)


def new_connections(bed, sources, per_source: int, payload: bytes = PAYLOAD):
    """`per_source` connections from each source (interleaved, 16 at a time)
    through the VIP; [(source, flow, member, echo ok)]."""
    order = [s for _ in range(per_source) for s in sources]
    with bed.client.executor(16) as ex:
        results = list(ex.map(lambda s: member_of_new_connection(VIP, VIP_PORT, s, payload), order))
    return [(s, flow, name, ok) for s, (flow, name, ok) in zip(order, results)]


def assert_backend_bytes(backends, expected: Counter) -> None:
    """Each backend received exactly the bytes sent on connections that
    named it: by name and by count, so a flow sent to one member and
    reported as another, or lost, fails."""
    got = {b.name: b.bytes_received for b in backends}
    assert got == {b.name: expected.get(b.name, 0) for b in backends}


@pytest.mark.timeout(90)
def test_every_client_reaches_one_member_through_any_instance(fleet_bed, flowgated_bin):
    bed = fleet_bed(instances=3, clients=100)
    backends = bed.start_backends("id")
    bed.start_instances(fleet_config(backends, lb_algorithm="SOURCE_IP"), flowgated_bin)

    results = new_connections(bed, bed.client_addresses, 10)
    assert all(ok for *_, ok in results), [r for r in results if not r[3]][:5]
    members = defaultdict(set)
    for source, _, name, _ in results:
        members[source].add(name)
    split = {s: sorted(n) for s, n in members.items() if len(n) != 1}
    assert not split, f"{len(split)} clients reached more than one member, e.g. {dict(list(split.items())[:5])}"
    assert len(members) == 100

    # The agreement is only shown if clients really crossed instances.
    served = bed.wait_served([flow for _, flow, _, _ in results])
    missing = [flow for _, flow, _, _ in results if flow not in served]
    assert not missing, f"flows no instance logged: {missing[:5]}"
    per_instance = Counter(served[flow] for _, flow, _, _ in results)
    assert set(per_instance) == {1, 2, 3} and min(per_instance.values()) >= 150, per_instance
    instances_of = defaultdict(set)
    for source, flow, _, _ in results:
        instances_of[source].add(served[flow])
    crossed = sum(1 for s in instances_of.values() if len(s) >= 2)
    assert crossed >= 90, f"only {crossed} of 100 clients went through two or more instances"

    # Maglev spreads the clients over every member, and the bytes went where the names say.
    assert set(Counter(next(iter(n)) for n in members.values())) == {b.name for b in backends}
    assert_backend_bytes(backends, Counter({name: len(PAYLOAD) * sum(1 for r in results if r[2] == name)
                                            for name in {b.name for b in backends}}))


def lose_an_instance(bed, backends, flowgated_bin):
    """Start 3 instances, learn each client's member, hold one connection per
    client, kill -9 instance 1 and withdraw it from the group. Returns
    (held connections, {held flow: instance}, buckets before, buckets after,
    members before {source: name})."""
    bed.start_instances(fleet_config(backends, lb_algorithm="SOURCE_IP"), flowgated_bin)
    first = new_connections(bed, bed.client_addresses, 2)
    assert all(ok for *_, ok in first)
    before = {}
    for s, _, name, _ in first:
        assert before.setdefault(s, name) == name, f"{s} reached two members"
    held = [HeldConnection(bed.client.connect(VIP, VIP_PORT, source=s), s) for s in bed.client_addresses]
    assert all(h.exchange(PAYLOAD) for h in held)
    served = bed.wait_served([h.flow for h in held])
    assert all(h.flow in served for h in held)
    assert {served[h.flow] for h in held} == {1, 2, 3}
    buckets_before = bed.bucket_map() if bed.group_type == "resilient" else {}

    victim = bed.instances[0]
    assert victim.kill9() == -9
    bed.withdraw(victim)
    buckets_after = bed.bucket_map() if bed.group_type == "resilient" else {}
    return held, {h.flow: served[h.flow] for h in held}, buckets_before, buckets_after, before


@pytest.mark.timeout(90)
def test_instance_loss_cuts_only_its_own_flows_and_moves_no_client(fleet_bed, flowgated_bin):
    bed = fleet_bed(instances=3, clients=100, group_type="resilient")
    backends = bed.start_backends("id")
    held, instance_of, buckets_before, buckets_after, before = lose_an_instance(bed, backends, flowgated_bin)

    # Only the dead instance's buckets moved (the resilient group's promise).
    assert set(buckets_before.values()) == {1, 2, 3} and set(buckets_after.values()) == {2, 3}
    moved = {b for b in buckets_before if buckets_before[b] != buckets_after[b]}
    assert moved == {b for b, nh in buckets_before.items() if nh == 1}

    second = os.urandom(5000)
    intact = {h.flow: h.exchange(second) for h in held}
    on_survivors = [h for h in held if instance_of[h.flow] != 1]
    on_victim = [h for h in held if instance_of[h.flow] == 1]
    assert on_survivors and on_victim
    assert [h.flow for h in on_survivors if not intact[h.flow]] == [], "connections through surviving instances were cut"
    assert not any(intact[h.flow] for h in on_victim), "a connection of the killed instance survived (not killed?)"

    # Every client, the dead instance's included, reconnects to its member.
    after = new_connections(bed, bed.client_addresses, 2)
    assert all(ok for *_, ok in after)
    moved_clients = {s: (before[s], name) for s, _, name, _ in after if before.get(s) != name}
    assert not moved_clients, f"clients whose member changed after the loss: {moved_clients}"
    assert all(h.member == before[h.source] for h in held)
    served = bed.wait_served([flow for _, flow, _, _ in after])
    assert {served[flow] for _, flow, _, _ in after} == {2, 3}

    for h in held:
        h.close()
    # Bytes by member name: 2 connections per client before, the held ones
    # (what each echoed back), 2 per client after.
    expected = Counter()
    for s in bed.client_addresses:
        expected[before[s]] += 2 * len(PAYLOAD)
    for h in held:
        expected[h.member] += h.sent
    for _, _, name, _ in after:
        expected[name] += len(PAYLOAD)
    assert_backend_bytes(backends, expected)


@pytest.mark.timeout(90)
def test_hash_threshold_group_cuts_flows_of_surviving_instances(fleet_bed, flowgated_bin):
    """Why the bed (and docs/fleet-testing.md) use a resilient group: with a
    hash-threshold (`mpath`) group, removing instance 1 shifts every region
    boundary, so established flows of instances that stayed up land on
    another instance and are reset. This is the failure the test above
    would show without the resilient group."""
    bed = fleet_bed(instances=3, clients=100, group_type="mpath")
    backends = bed.start_backends("id")
    held, instance_of, *_ = lose_an_instance(bed, backends, flowgated_bin)
    on_survivors = [h for h in held if instance_of[h.flow] != 1]
    cut = [h.flow for h in on_survivors if not h.exchange(PAYLOAD)]
    # Hash-threshold 3 -> 2 moves the hash range [1/2, 2/3) from instance 2
    # to 3: about a quarter of the survivors' flows (P(none of ~67) < 1e-7).
    assert len(cut) >= 3, f"only {len(cut)} of {len(on_survivors)} surviving flows were cut"
    for h in held:
        h.close()


@pytest.mark.timeout(60)
def test_a_crashed_runs_namespaces_and_processes_are_removed_by_the_next_bed(tmp_path):
    """A run killed mid-test leaves namespaces (and whatever ran inside);
    the next bed removes them, and only those whose creating process is gone."""
    import subprocess
    import sys
    script = tmp_path / "crash.py"
    script.write_text(
        "import os, subprocess, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from harness.fleet_netns import FleetBed\n"
        "bed = FleetBed(instances=2, clients=2, backends=1).create()\n"
        "p = bed.popen(bed.instances[0].ns, ['sleep', '120'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(bed.tag, p.pid, flush=True)\n"
        "os._exit(0)\n")
    try:
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        tag, pid = out.stdout.split()
        pid = int(pid)
        listed = lambda: [n.split()[0] for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                               text=True).stdout.splitlines() if n.startswith(tag)]
        assert len(listed()) == 5 and Path(f"/proc/{pid}").exists()
        mine = FleetBed(instances=1, clients=1, backends=1).create()   # cleans up first
        try:
            assert listed() == []
            time.sleep(0.1)
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
            assert all(Path(ns.path).exists() for ns in mine.namespaces), "a live run's namespaces were removed"
            assert clean_leftovers() == []
        finally:
            mine.destroy()
        assert not any(Path(ns.path).exists() for ns in mine.namespaces)
        mine.destroy()   # idempotent
    finally:
        clean_leftovers()
