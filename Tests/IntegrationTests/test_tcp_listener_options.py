"""Per-listener TCP options of the config file (issue 16): `tcp_defer_accept`
and `tcp_fastopen`, off by default, set on the listener's sockets
(Sources/FlowgateDataPlane/TCP/TCPAcceptor.swift)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness import dump_config, member, single_pool_config

HERE = Path(__file__).resolve().parent


def connect_silently(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    time.sleep(0.6)   # long enough for any accept and connect to the member
    return s


def test_defer_accept_waits_for_the_clients_first_bytes_and_a_reload_turns_it_off(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    (port,) = port_range(1)
    cfg = single_pool_config([port], [member(backend.port)], listener_extra={"tcp_defer_accept": 5})
    d = daemon(cfg)
    with connect_silently(port) as s:
        # The handshake completed for the client, but the kernel keeps the
        # connection from flowgated until data comes: no member connection yet.
        assert backend.accepted == 0
        s.sendall(b"first bytes")
        assert s.recv(100) == b"first bytes"
    assert backend.accepted == 1
    # Off again by a reload: a silent client is accepted and connected at once.
    del cfg["accelerators"][0]["listeners"][0]["tcp_defer_accept"]
    d.config_path.write_text(dump_config(cfg))
    applied = len(d.log_lines("config_applied"))
    os.kill(d.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    while len(d.log_lines("config_applied")) == applied and time.monotonic() < deadline:
        time.sleep(0.05)
    with connect_silently(port):
        assert backend.accepted == 2


def test_without_defer_accept_a_silent_client_reaches_the_member(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    (port,) = port_range(1)
    daemon(single_pool_config([port], [member(backend.port)]))
    with connect_silently(port):
        assert backend.accepted == 1


def run_in_namespace(queue: int) -> dict:
    """netns_fastopen.py in a namespace of its own whose net.ipv4.tcp_fastopen
    has the server bit (the host's setting is left alone)."""
    ns = f"fgtfo{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_fastopen=3"], check=True)
        from harness import flowgated_bin
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(HERE / "harness" / "netns_fastopen.py"),
                              str(flowgated_bin()), str(queue)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_fastopen_takes_the_data_of_the_syn_only_when_set():
    on = run_in_namespace(16)
    off = run_in_namespace(0)
    expected = [f"fast open {i}" for i in range(3)]
    assert on["replies"] == expected and off["replies"] == expected
    # The first connection only fetches a cookie; the next two carry data in the SYN.
    assert on["passive"] >= 2, on
    assert off["passive"] == 0, off
    assert not on["log"], on   # the namespace's sysctl has the server bit: no warning
