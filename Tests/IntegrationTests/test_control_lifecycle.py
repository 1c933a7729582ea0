"""The control server as a service of the daemon's group (issue 12 §3): it
stops last-started-first at exit, so its thread is joined and its socket file
removed before the process exits with 0, also when a drain is cut short; while
the daemon drains it still answers reads."""
from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time

from harness import UnixHTTPConnection, member, single_pool_config
from harness.configs import PROJECT_ID


def is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def test_sigterm_removes_the_control_socket_and_exits_zero(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(2)
    d = daemon(single_pool_config(ports, [member(backend.port)]))
    assert is_socket(d.control_socket)
    # An idle keep-alive control connection must not hold the exit up.
    idle = UnixHTTPConnection(d.control_socket)
    idle.request("GET", "/healthz")
    assert idle.getresponse().read().strip() == b"ok"
    began = time.monotonic()
    assert d.terminate(timeout=10) == 0, d.stderr_text()
    assert time.monotonic() - began < 5
    assert not os.path.exists(d.control_socket), "the control socket file was left behind"
    stopped = d.log_lines("control_stopped")
    assert len(stopped) == 1 and f"unix_socket={d.control_socket}" in stopped[0], d.stderr_text()
    idle.close()


def test_control_answers_reads_while_draining_and_is_removed_when_the_drain_is_cut(daemon, tcp_backend, port_range):
    hold = tcp_backend("hold", mode="hold")
    (port,) = port_range(1)
    cfg = single_pool_config([port], [member(hold.port)], tuning={"drain_timeout": 60})
    pool_id = cfg["pools"][0]["id"]
    d = daemon(cfg)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        assert hold.wait_accepted(1)
        d.signal(signal.SIGTERM)
        d.wait_notification("STOPPING=1")
        status, _, body = d.request("GET", f"/v3/{PROJECT_ID}/elb/pools/{pool_id}")
        assert status == 200 and json.loads(body)["pool"]["id"] == pool_id
        status, _, body = d.request("PUT", f"/v3/{PROJECT_ID}/elb/pools/{pool_id}", {"pool": {"name": "late"}})
        assert status == 503 and json.loads(body)["error_code"] == "ELB.8906", body
        assert is_socket(d.control_socket)
        d.signal(signal.SIGTERM)
        assert d.wait_exit(10) == 0
    assert not os.path.exists(d.control_socket), "the control socket file was left behind"
