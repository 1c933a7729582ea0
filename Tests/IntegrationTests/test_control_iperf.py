"""Live-update integrity (issue 5): an iperf3 transfer through a listener
finishes with every byte while the listener's ranges change (keeping its
port), the pool's algorithm flips, persistence and slow start toggle, and
members come and go: 200 acknowledged updates during the run."""
from __future__ import annotations

import itertools
import json
import re
import threading
import time

import pytest

from harness import iperf3_client, member, single_pool_config, tcp_roundtrip

pytestmark = [pytest.mark.iperf]


def run_updates(d, arn, pool_id, listen_port, spare_ports, extra_member_port, count, errors, latencies):
    algorithms = itertools.cycle(["LEAST_CONNECTIONS", "SOURCE_IP", "ROUND_ROBIN"])
    added = None
    for i in range(count):
        kind = i % 5
        if kind == 0:
            ranges = [{"FromPort": listen_port, "ToPort": listen_port}]
            if i % 10 == 0:
                ranges.append({"FromPort": spare_ports[0], "ToPort": spare_ports[-1]})
            req = ("POST", "/", {"ListenerArn": arn, "PortRanges": ranges},
                   {"X-Amz-Target": "GlobalAccelerator_V20180706.UpdateListener"})
        elif kind == 1:
            req = ("PUT", f"/v3/{d.config['project_id']}/elb/pools/{pool_id}", {"pool": {"lb_algorithm": next(algorithms)}}, {})
        elif kind == 2:
            persistence = {"type": "SOURCE_IP", "persistence_timeout": 1} if i % 10 == 2 else None
            req = ("PUT", f"/v3/{d.config['project_id']}/elb/pools/{pool_id}", {"pool": {"session_persistence": persistence}}, {})
        elif kind == 3:
            req = ("PUT", f"/v3/{d.config['project_id']}/elb/pools/{pool_id}",
                   {"pool": {"slow_start": {"enable": i % 10 == 3, "duration": 30}}}, {})
        else:
            if added is None:
                req = ("POST", f"/v3/{d.config['project_id']}/elb/pools/{pool_id}/members",
                       {"member": {"address": "127.0.0.1", "protocol_port": extra_member_port}}, {})
            else:
                req = ("DELETE", f"/v3/{d.config['project_id']}/elb/pools/{pool_id}/members/{added}", None, {})
        method, path, body, headers = req
        start = time.perf_counter()
        status, _, reply = d.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        latencies.append(time.perf_counter() - start)
        if status not in (200, 201, 204):
            errors.append((method, path, status, reply[:300]))
            return
        if kind == 4:
            added = json.loads(reply)["member"]["id"] if added is None else None


def _sysctl_max(name: str) -> int:
    """The max field of net.ipv4.<name> (min default max), in bytes."""
    with open(f"/proc/sys/net/ipv4/{name}") as f:
        return int(f.read().split()[2])


@pytest.mark.timeout(120)
def test_iperf3_tcp_survives_200_live_updates(daemon, iperf3_server, tcp_backend, port_range):
    listen_port, server_port, *spare = port_range(5)
    extra = tcp_backend("extra", mode="echo")
    iperf3_server(server_port)
    cfg = single_pool_config([listen_port], [member(server_port)], workers=2)
    d = daemon(cfg)
    arn = d.config["accelerators"][0]["listeners"][0]["ListenerArn"]
    pool_id = cfg["pools"][0]["id"]
    errors, latencies, result = [], [], {}

    def client():
        result["r"] = iperf3_client(listen_port, seconds=6, extra=("-i", "0.1"))

    t = threading.Thread(target=client)
    t.start()
    time.sleep(1.0)
    run_updates(d, arn, pool_id, listen_port, spare, extra.port, 200, errors, latencies)
    t.join(60)
    assert not errors, errors
    assert len(latencies) == 200
    r = result["r"]
    sent = r["end"]["sum_sent"]["bytes"]
    received = r["end"]["sum_received"]["bytes"]
    # iperf3's server stops counting at the client's TEST_END message, so the
    # bytes still in the proxy's and the kernel's buffers at that instant are
    # not in sum_received even without updates (measured: 4-8 MB short through
    # an idle daemon). Exact byte integrity is the SHA-256 test below.
    # Bound: what the two TCP hops can hold at once (two receive and two send
    # buffers at this host's tcp_rmem/tcp_wmem maxima) plus the relay's pipe
    # and pending buffer. A fixed 32 MiB failed once on a host whose
    # tcp_rmem max is 32 MiB (66 MB in flight at TEST_END).
    in_flight = 2 * (_sysctl_max("tcp_rmem") + _sysctl_max("tcp_wmem")) + (2 << 20)
    assert sent > 0 and sent - received < in_flight, (sent, received, in_flight)
    intervals = [iv["sum"]["bytes"] for iv in r["intervals"]]
    print(f"iperf3 through 200 updates: {sent} bytes sent, {received} received, {len(intervals)} intervals of 0.1 s, "
          f"min interval {min(intervals)} bytes, zero-byte intervals {sum(1 for b in intervals if b == 0)}; "
          f"update latency p50 {sorted(latencies)[100] * 1000:.2f} ms p99 {sorted(latencies)[197] * 1000:.2f} ms")
    assert min(intervals) > 0, "a 0.1 s interval moved no data: the data plane stalled"


@pytest.mark.timeout(180)
def test_echo_streams_are_byte_exact_through_200_live_updates(daemon, tcp_backend, port_range):
    """Back-to-back 16 MiB echo round trips (SHA-256 both ways) for as long as
    the 200 updates take: every one must come back exact."""
    listen_port, *spare = port_range(4)
    echo = tcp_backend("echo", mode="echo")
    extra = tcp_backend("extra", mode="echo")
    cfg = single_pool_config([listen_port], [member(echo.port)], workers=2)
    d = daemon(cfg)
    arn = d.config["accelerators"][0]["listeners"][0]["ListenerArn"]
    pool_id = cfg["pools"][0]["id"]
    errors, latencies, results = [], [], []
    done = threading.Event()

    def client():
        while not done.is_set():
            results.append(tcp_roundtrip(listen_port, 16 << 20, timeout=60))

    t = threading.Thread(target=client)
    t.start()
    time.sleep(0.2)
    run_updates(d, arn, pool_id, listen_port, spare, extra.port, 200, errors, latencies)
    done.set()
    t.join(90)
    assert not errors, errors
    assert len(results) >= 3, "too few round trips overlapped the updates"
    for sent, received, count in results:
        assert count == 16 << 20
        assert received == sent, "an echoed stream differs from what was sent"
    print(f"{len(results)} exact 16 MiB round trips during 200 updates")


@pytest.mark.timeout(120)
def test_iperf3_udp_survives_200_live_updates(daemon, iperf3_server, udp_backend, port_range):
    """iperf3 -u keeps its TCP control connection on the same port, so the
    port has a TCP listener (for control) and a UDP listener (the data), each
    with its own pool; the UDP listener and pool take the 200 updates."""
    from harness import config, listener, pool
    listen_port, server_port, *spare = port_range(5)
    extra = udp_backend("extra", mode="echo")
    iperf3_server(server_port)
    tcp_pool = pool([member(server_port)], protocol="TCP")
    udp_pool = pool([member(server_port)], protocol="UDP")
    tcp_l = listener([listen_port], tcp_pool["id"], protocol="TCP")
    udp_l = listener([listen_port], udp_pool["id"], protocol="UDP")
    cfg = config([tcp_l, udp_l], [tcp_pool, udp_pool], workers=2)
    d = daemon(cfg)
    udp_arn = d.config["accelerators"][0]["listeners"][1]["ListenerArn"]
    errors, latencies, result = [], [], {}

    def client():
        result["r"] = iperf3_client(listen_port, seconds=6, udp=True, bitrate="100M", length="1400",
                                    extra=("-i", "0.1", "--get-server-output"))

    t = threading.Thread(target=client)
    t.start()
    time.sleep(1.0)
    run_updates(d, udp_arn, udp_pool["id"], listen_port, spare, extra.port, 200, errors, latencies)
    t.join(60)
    assert not errors, errors
    r = result["r"]
    s = r["end"]["sum"]
    # The receiver's own 1 s reports ("[  5]   1.00-2.00 sec ... 12/8930 (0.13%)"):
    # a flow cut or moved by an update would leave intervals with nothing received.
    received = []
    for line in r["server_output_text"].splitlines():
        m = re.match(r"^\[\s*\d+\]\s+[\d.]+-[\d.]+\s+sec\s.*?(\d+)/(\d+) \(", line)
        if m and not line.rstrip().endswith(("receiver", "sender")):
            received.append(int(m.group(2)) - int(m.group(1)))
    assert len(received) >= 5, r["server_output_text"]
    print(f"iperf3 UDP through 200 updates: {s['packets']} datagrams, {s['lost_packets']} lost ({s['lost_percent']:.3f}%), "
          f"receiver's datagrams per second {received}")
    assert s["packets"] > 0
    assert min(received[:-1]) > 0, "a second received nothing: the flow was cut"
    # Loss through an idle daemon on this shared 2-core machine is 0-2 %, and
    # more when other work competes for the cores; a cut flow loses the rest.
    assert s["lost_percent"] < 30.0, s
