"""`tuning.port_ranges: lookup` (issue 16, docs/architecture.md §20): one TCP and one UDP socket per worker serve a
listener's whole port range through a BPF sk_lookup program. Everything runs in a network namespace the test creates
(the program attaches to the daemon's own namespace), with addresses from 198.18.0.0/15 on its loopback:

  198.18.0.1  the listeners' bind address (1..65535, TCP and UDP)
  198.18.0.2  another service, which must stay untouched
  198.18.0.3  the member: it answers on every probed port with the port it was reached on
  198.18.0.4  the clients (an address of their own: every port of 198.18.0.1 belongs to the listeners)
"""
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import config, listener, member, pool

AGENT = str(Path(__file__).parent / "harness" / "netns_agent.py")
BIND, OTHER, MEMBER, CLIENT = "198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces and sk_lookup")


@pytest.fixture
def netns(tmp_path):
    name = f"fgsk{os.getpid()}x{random.randrange(10**6)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    procs: list[subprocess.Popen] = []
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        for a in (BIND, OTHER, MEMBER, CLIENT):
            subprocess.run(["ip", "-n", name, "addr", "add", f"{a}/32", "dev", "lo"], check=True)
        yield Netns(name, tmp_path, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        subprocess.run(["ip", "netns", "del", name], check=False)


class Netns:
    def __init__(self, name: str, tmp: Path, procs: list):
        self.name, self.tmp, self.procs = name, tmp, procs

    def ports_file(self, ports) -> str:
        f = self.tmp / f"ports-{random.randrange(10**9)}.json"
        f.write_text(json.dumps(sorted(ports)))
        return str(f)

    def serve(self, addr: str, ports, seconds: float = 120, text: str | None = None) -> None:
        args = ["ip", "netns", "exec", self.name, sys.executable, AGENT, "serve", addr, self.ports_file(ports), str(seconds)]
        p = subprocess.Popen(args + ([text] if text else []), stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout.readline().strip() == "ready"

    def run(self, cmd: str, addr: str, ports) -> dict:
        out = subprocess.run(["ip", "netns", "exec", self.name, sys.executable, AGENT, cmd, addr, self.ports_file(ports), CLIENT],
                             check=True, capture_output=True, text=True, timeout=240)
        return json.loads(out.stdout)

    def flowgated(self, binary: str, drop_caps: bool = False) -> str:
        """A wrapper that execs flowgated inside the namespace (same pid, so the harness sees the daemon);
        drop_caps: without CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN (which the kernel takes for either), as under a unit that grants none of them."""
        w = self.tmp / ("flowgated-in-netns-nocaps" if drop_caps else "flowgated-in-netns")
        drop = "setpriv --bounding-set -bpf,-net_admin,-sys_admin -- " if drop_caps else ""
        w.write_text(f"#!/bin/sh\nexec ip netns exec {self.name} {drop}{binary} \"$@\"\n")
        w.chmod(0o755)
        return str(w)


def range_config(ranges, mode: str = "lookup", workers: int = 2):
    tcp_pool = pool([member(None, address=MEMBER)], protocol="TCP")
    udp_pool = pool([member(None, address=MEMBER)], protocol="UDP")
    listeners = [listener(ranges, tcp_pool["id"], protocol="TCP", bind=BIND, arn=ARNS[0]),
                 listener(ranges, udp_pool["id"], protocol="UDP", bind=BIND, arn=ARNS[1])]
    return config(listeners, [tcp_pool, udp_pool], workers=workers, accelerator=ACC, tuning={"port_ranges": mode})


ACC = "arn:aws:globalaccelerator::123456789012:accelerator/5ea0fd1a-0b8d-4a1c-9d3e-7c3e0e0a1601"
ARNS = [f"{ACC}/listener/aaaa0001", f"{ACC}/listener/aaaa0002"]


def sample_ports(n: int, lo: int = 1, hi: int = 65535) -> list[int]:
    ports = set(random.sample(range(lo + 1, hi), n - 2)) | {lo, hi}
    return sorted(ports)


def group_ports(pid: int) -> set[int]:
    """Ports the daemon's lookup groups bound on BIND (the kernel picked them): a packet to one of them reaches the
    group without steering, so "refused" checks skip them."""
    out = set()
    want = "".join(f"{int(b):02X}" for b in reversed(BIND.split(".")))
    for table in ("tcp", "udp"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            addr, port = line.split()[1].split(":")
            if addr == want:
                out.add(int(port, 16))
    return out


def assert_answers(result: dict, ports, addr: str = BIND, text=None) -> None:
    bad_tcp = {p: result["tcp"][str(p)] for p in ports if result["tcp"][str(p)] != (text or str(p))}
    bad_udp = {p: result["udp"][str(p)] for p in ports if result["udp"][str(p)] != [text or str(p), addr, p]}
    assert not bad_tcp, f"{len(bad_tcp)} TCP ports answered wrong, e.g. {list(bad_tcp.items())[:5]}"
    assert not bad_udp, f"{len(bad_udp)} UDP ports answered wrong, e.g. {list(bad_udp.items())[:5]}"


@pytest.mark.timeout(300)
def test_whole_range_on_one_socket_per_worker(daemon, flowgated_bin, netns):
    ports = sample_ports(1000)
    netns.serve(MEMBER, ports)
    netns.serve(OTHER, [80, 5353], text="other")
    t0 = time.monotonic()
    d = daemon(range_config([(1, 65535)]), binary=netns.flowgated(flowgated_bin))
    ready_s = time.monotonic() - t0
    fds = len(os.listdir(f"/proc/{d.pid}/fd"))
    rss_kb = int(next(l for l in Path(f"/proc/{d.pid}/status").read_text().splitlines() if l.startswith("VmRSS")).split()[1])
    print(f"lookup 1..65535 TCP+UDP, 2 workers: ready {ready_s:.3f} s, {fds} descriptors, RSS {rss_kb} KiB")
    assert any("mode=lookup" in l for l in d.log_lines("port_ranges")), d.stderr_text()[-2000:]
    assert ready_s < 1.0
    assert fds < 100
    # 1,000 connections and 1,000 datagrams, each answered by the member on the port the client reached; each UDP
    # reply comes from that port.
    assert_answers(netns.run("probe", BIND, ports), ports)
    # The other service on another address answers itself.
    assert_answers(netns.run("probe", OTHER, [80, 5353]), [80, 5353], addr=OTHER, text="other")


@pytest.mark.timeout(300)
def test_shrinking_the_ranges_refuses_removed_ports_at_once(daemon, flowgated_bin, netns):
    kept = sample_ports(50, 1, 30000)
    removed = sample_ports(50, 30001, 65535)
    netns.serve(MEMBER, kept + removed)
    d = daemon(range_config([(1, 65535)]), binary=netns.flowgated(flowgated_bin))
    # Live UDP sessions (and TCP) on ports about to be removed.
    assert_answers(netns.run("probe", BIND, kept + removed), kept + removed)
    d.write_config(range_config([(1, 30000)]))
    d.sighup(wait=True)
    skip = group_ports(d.pid)
    probe = [p for p in removed if p not in skip]
    result = netns.run("refused", BIND, probe)
    assert set(result["tcp"].values()) == {"refused"}, result["tcp"]
    assert set(result["udp"].values()) == {"refused"}, result["udp"]
    assert_answers(netns.run("probe", BIND, kept), kept)


@pytest.mark.timeout(300)
def test_per_port_fallback_serves_the_same_range(daemon, flowgated_bin, netns):
    ports = list(range(20001, 20201))
    netns.serve(MEMBER, ports)
    d = daemon(range_config([(20001, 20200)], mode="per_port"), binary=netns.flowgated(flowgated_bin))
    assert any("mode=per_port" in l for l in d.log_lines("port_ranges")), d.stderr_text()[-2000:]
    fds = len(os.listdir(f"/proc/{d.pid}/fd"))
    assert fds >= 2 * 2 * 200, "per_port binds a socket per port per worker"
    assert_answers(netns.run("probe", BIND, ports), ports)


@pytest.mark.timeout(300)
def test_takeover_hands_over_the_lookup_groups(daemon, flowgated_bin, netns):
    """flowgated --takeover receives the lookup groups, attaches its own program before `go`, and the old process
    detaches its own at `go`: clients probing all along get every answer, and after the old process exits the new
    one still serves the whole range."""
    import threading
    ports = sample_ports(300)
    netns.serve(MEMBER, ports)
    binary = netns.flowgated(flowgated_bin)
    cfg = range_config([(1, 65535)])
    old = daemon(cfg, binary=binary)
    assert_answers(netns.run("probe", BIND, ports), ports)
    during: dict = {}
    t = threading.Thread(target=lambda: during.update(netns.run("probe", BIND, ports)))
    t.start()
    new = daemon(cfg, binary=binary, args=["--takeover"], control_socket=old.control_socket, state_file=old.state_file)
    t.join(240)
    assert new.log_lines("takeover_complete"), new.stderr_text()[-3000:]
    assert any("groups=2" in l for l in new.log_lines("listeners_adopted")), new.stderr_text()[-3000:]
    assert_answers(during, ports)
    assert old.wait_exit(30) == 0
    assert_answers(netns.run("probe", BIND, ports), ports)


@pytest.mark.timeout(120)
def test_a_port_another_program_serves_is_refused_not_captured(daemon, flowgated_bin, netns):
    """A per-port bind would fail with EADDRINUSE; lookup binds nothing per port, so the daemon checks the
    namespace's socket tables and refuses the start rather than take the port's traffic."""
    netns.serve(BIND, [8080], text="theirs")
    d = daemon(range_config([(1, 65535)]), wait_ready=False, binary=netns.flowgated(flowgated_bin))
    assert d.wait_exit(20) == 1
    assert "port 8080: cannot bind TCP 198.18.0.1:8080: Address already in use" in d.stderr_text()
    assert "another socket is bound to 198.18.0.1:8080" in d.stderr_text(), d.stderr_text()[-3000:]
    assert_answers(netns.run("probe", BIND, [8080]), [8080], text="theirs")


@pytest.mark.timeout(120)
def test_auto_falls_back_to_per_port_without_the_capabilities(daemon, flowgated_bin, netns):
    ports = list(range(20001, 20011))
    netns.serve(MEMBER, ports)
    d = daemon(range_config([(20001, 20010)], mode="auto"), binary=netns.flowgated(flowgated_bin, drop_caps=True))
    (line,) = d.log_lines("port_ranges")
    assert "mode=per_port" in line and "requested=auto" in line and "Operation not permitted" in line, line
    assert_answers(netns.run("probe", BIND, ports), ports)
    # Asked for explicitly, lookup without the capabilities fails the start and says why.
    d2 = daemon(range_config([(20001, 20010)], mode="lookup"), wait_ready=False,
                binary=netns.flowgated(flowgated_bin, drop_caps=True))
    assert d2.wait_exit(20) == 1
    assert "tuning.port_ranges: lookup is unavailable" in d2.stderr_text(), d2.stderr_text()[-2000:]
