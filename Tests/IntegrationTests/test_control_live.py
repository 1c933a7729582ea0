"""Live, atomic and durable updates through the control Unix socket and
flowgatectl (issue 5): a port-range change opens the new ports and refuses
the removed ones; a rejected update leaves every socket as it was; kill -9
after acknowledged updates loses nothing; a corrupt state file stops the start."""
from __future__ import annotations

import json
import socket
import subprocess
import threading
import time

import pytest

from harness import (config, listener, member, pool, single_pool_config, tcp_connect, tcp_exchange,
                     tcp_listening_ports, tcp_member_name)


def ctl(flowgatectl_bin, d, *args, check=True):
    out = subprocess.run([str(flowgatectl_bin), *args, "--socket", d.control_socket], capture_output=True, text=True, timeout=30)
    if check:
        assert out.returncode == 0, f"flowgatectl {' '.join(args)} failed: {out.stderr}"
    return out


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def arn_of(d) -> str:
    return d.config["accelerators"][0]["listeners"][0]["ListenerArn"]


def test_port_range_change_opens_new_ports_and_refuses_removed(daemon, tcp_backend, port_range, flowgatectl_bin):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(6)
    d = daemon(single_pool_config(ports[:3], [member(backend.port)], workers=2))
    arn = arn_of(d)
    # Keep one connection open on a port that stays: it must survive the change.
    held = tcp_connect(ports[0])
    held.sendall(b"before")
    assert held.recv(100) == b"before"
    out = ctl(flowgatectl_bin, d, "listener", "update", arn, "--port-ranges", f"{ports[0]},{ports[3]}-{ports[5]}", "--json")
    assert json.loads(out.stdout)["Listener"]["PortRanges"] == [
        {"FromPort": ports[0], "ToPort": ports[0]}, {"FromPort": ports[3], "ToPort": ports[5]}]
    for p in (ports[0], *ports[3:6]):
        assert tcp_exchange(p, b"x%d" % p) == b"x%d" % p, f"new/kept port {p} does not forward"
    for p in ports[1:3]:
        assert refused(p), f"removed port {p} still accepts"
    held.sendall(b"after")
    assert held.recv(100) == b"after", "an established connection was cut by the update"
    held.close()


def test_rejected_update_leaves_every_socket_as_it_was(daemon, tcp_backend, port_range, flowgatectl_bin):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(4)
    d = daemon(single_pool_config(ports[:2], [member(backend.port)]))
    arn = arn_of(d)
    # Someone else holds ports[3]: binding it must fail the whole request.
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", ports[3]))
    squatter.listen(1)
    held = tcp_connect(ports[0])
    held.sendall(b"ping")
    assert held.recv(10) == b"ping"
    listening_before = tcp_listening_ports() & set(ports)
    out = ctl(flowgatectl_bin, d, "listener", "update", arn, "--port-ranges", f"{ports[2]}-{ports[3]}", check=False)
    assert out.returncode == 1
    assert out.stderr.startswith("error: InvalidPortRangeException: "), out.stderr
    assert str(ports[3]) in out.stderr
    assert tcp_listening_ports() & set(ports) == listening_before
    assert refused(ports[2]), "a port of the rejected update was left open"
    for p in ports[:2]:
        assert tcp_exchange(p, b"still") == b"still"
    held.sendall(b"pong")
    assert held.recv(10) == b"pong"
    held.close()
    squatter.close()
    shown = json.loads(ctl(flowgatectl_bin, d, "listener", "show", arn, "--json").stdout)
    assert shown["Listener"]["PortRanges"] == [{"FromPort": ports[0], "ToPort": ports[1]}]


def test_kill9_after_acknowledged_updates_restart_keeps_them(daemon, tcp_backend, port_range, flowgatectl_bin):
    a, b = tcp_backend("a", mode="id"), tcp_backend("b", mode="id")
    ports = port_range(3)
    cfg = single_pool_config(ports[:1], [member(a.port)])
    pool_id = cfg["pools"][0]["id"]
    d = daemon(cfg)
    arn = arn_of(d)
    ctl(flowgatectl_bin, d, "listener", "update", arn, "--port-ranges", f"{ports[1]}-{ports[2]}", "--client-affinity", "SOURCE_IP")
    ctl(flowgatectl_bin, d, "pool", "update", pool_id, "--lb-algorithm", "LEAST_CONNECTIONS", "--persistence", "SOURCE_IP:5",
        "--slow-start", "60", "--name", "renamed")
    added = json.loads(ctl(flowgatectl_bin, d, "member", "add", pool_id, "--address", "127.0.0.1", "--port", str(b.port),
                           "--weight", "2", "--json").stdout)["member"]
    ctl(flowgatectl_bin, d, "member", "update", pool_id, added["id"], "--weight", "7")
    first = json.loads(ctl(flowgatectl_bin, d, "member", "list", pool_id, "--json").stdout)["members"][0]
    ctl(flowgatectl_bin, d, "member", "remove", pool_id, first["id"])
    d.kill9()
    d.restart()
    listener_now = json.loads(ctl(flowgatectl_bin, d, "listener", "show", arn, "--json").stdout)["Listener"]
    assert listener_now["PortRanges"] == [{"FromPort": ports[1], "ToPort": ports[2]}]
    assert listener_now["ClientAffinity"] == "SOURCE_IP"
    pool_now = json.loads(ctl(flowgatectl_bin, d, "pool", "show", pool_id, "--json").stdout)["pool"]
    assert (pool_now["lb_algorithm"], pool_now["name"]) == ("LEAST_CONNECTIONS", "renamed")
    assert pool_now["session_persistence"]["persistence_timeout"] == 5
    assert pool_now["slow_start"] == {"enable": True, "duration": 60}
    members = json.loads(ctl(flowgatectl_bin, d, "member", "list", pool_id, "--json").stdout)["members"]
    assert [(m["id"], m["protocol_port"], m["weight"]) for m in members] == [(added["id"], b.port, 7)]
    # And the data plane serves it: new ports, only member b.
    assert refused(ports[0])
    assert {tcp_member_name(p) for p in ports[1:]} == {"b"}


def test_state_reset_returns_to_the_config_file(daemon, tcp_backend, port_range, flowgatectl_bin):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(2)
    d = daemon(single_pool_config(ports[:1], [member(backend.port)]))
    arn = arn_of(d)
    ctl(flowgatectl_bin, d, "listener", "update", arn, "--port-ranges", str(ports[1]))
    assert d.state_file.exists()
    assert ctl(flowgatectl_bin, d, "state", "reset").stdout.startswith("state reset")
    assert not d.state_file.exists()
    shown = json.loads(ctl(flowgatectl_bin, d, "listener", "show", arn, "--json").stdout)["Listener"]
    assert shown["PortRanges"] == [{"FromPort": ports[0], "ToPort": ports[0]}]
    assert tcp_exchange(ports[0], b"back") == b"back"
    assert refused(ports[1])


def test_corrupt_state_file_stops_the_start_with_a_clear_error(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    d = daemon(single_pool_config(ports, [member(backend.port)]), wait_ready=False)
    d.wait_ready()
    d.terminate()
    d.state_file.write_text('{"format": 1, "accelerators": [')
    d.start(wait_ready=False)
    assert d.wait_exit() == 1
    lines = d.log_lines("state_file_invalid")
    assert lines and "not valid JSON" in lines[0] and "flowgatectl state reset" in lines[0], d.stderr_text()


def test_state_file_failing_validation_stops_the_start(daemon, tcp_backend, port_range, flowgatectl_bin):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    cfg = single_pool_config(ports, [member(backend.port)])
    d = daemon(cfg)
    ctl(flowgatectl_bin, d, "pool", "update", cfg["pools"][0]["id"], "--name", "x")
    d.terminate()
    state = json.loads(d.state_file.read_text())
    state["pools"][0]["members"][0]["weight"] = 1000
    d.state_file.write_text(json.dumps(state))
    d.start(wait_ready=False)
    assert d.wait_exit() == 1
    assert any("weight" in l for l in d.log_lines("state_file_invalid")), d.stderr_text()


def test_state_file_with_invalid_cookie_persistence_stops_the_start(daemon, tcp_backend, port_range, flowgatectl_bin):
    """A state file whose HTTP pool has APP_COOKIE without its cookie_name:
    the start is refused, naming the field and the fix, rather than running
    with a persistence setting that could not work."""
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    web = pool([member(backend.port)], protocol="HTTP")
    d = daemon(config([listener(ports, web["id"])], [web]))
    ctl(flowgatectl_bin, d, "pool", "update", web["id"], "--name", "x")
    d.terminate()
    state = json.loads(d.state_file.read_text())
    state["pools"][0]["session_persistence"] = {"type": "APP_COOKIE", "persistence_timeout": 60}
    d.state_file.write_text(json.dumps(state))
    d.start(wait_ready=False)
    assert d.wait_exit() == 1
    # The log line escapes the quotes around the value.
    assert any("pools[0].session_persistence.cookie_name: required with APP_COOKIE" in l
               for l in d.log_lines("state_file_invalid")), d.stderr_text()
    assert any("flowgatectl state reset" in l for l in d.log_lines("start_refused")), d.stderr_text()


def test_flowgatectl_tables_and_errors(daemon, tcp_backend, port_range, flowgatectl_bin):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    cfg = single_pool_config(ports, [member(backend.port)])
    d = daemon(cfg)
    table = ctl(flowgatectl_bin, d, "pool", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "PROTOCOL", "ALGORITHM", "PERSISTENCE", "SLOW", "START", "MEMBERS"]
    assert table[1].split()[0] == cfg["pools"][0]["id"]
    bad = ctl(flowgatectl_bin, d, "pool", "update", cfg["pools"][0]["id"], "--lb-algorithm", "RANDOM", check=False)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: ELB.8902: Invalid input for field/attribute lb_algorithm. Value: RANDOM.")
    gone = subprocess.run([str(flowgatectl_bin), "pool", "list", "--socket", "/nonexistent/control.sock"], capture_output=True, text=True)
    assert gone.returncode == 2 and "cannot connect to /nonexistent/control.sock" in gone.stderr


def test_control_socket_mode_healthz_and_metrics(daemon, tcp_backend, port_range, flowgatectl_bin):
    import os
    import stat
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    d = daemon(single_pool_config(ports, [member(backend.port)]))
    assert stat.S_IMODE(os.stat(d.control_socket).st_mode) == 0o600
    status, _, body = d.request("GET", "/healthz")
    assert (status, body) == (200, b"ok\n")
    ctl(flowgatectl_bin, d, "listener", "list")
    status, headers, body = d.request("GET", "/metrics")
    assert status == 200
    text = body.decode()
    assert 'flowgate_control_requests_total{operation="ListListeners",status="200"} 1' in text
    from harness import parse_metrics, promtool_check, promtool_path
    samples = {s.name: s.value for s in parse_metrics(text)}
    assert samples["flowgate_bound_ports"] == 1
    assert samples["flowgate_active_flows"] == 0
    if promtool_path():
        lint = promtool_check(text)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_oversized_body_is_refused(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    d = daemon(single_pool_config(ports, [member(backend.port)]))
    # evhttp answers 413 as soon as the announced length exceeds 1 MiB, before the body.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(d.control_socket)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: GlobalAccelerator_V20180706.ListAccelerators\r\n"
              b"Content-Length: %d\r\n\r\n{" % ((1 << 20) + 1))
    reply = s.recv(4096)
    s.close()
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    status, _, _ = d.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "GlobalAccelerator_V20180706.ListAccelerators"})
    assert status == 200


def test_idle_connection_is_cut_by_the_timeout(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    d = daemon(single_pool_config(ports, [member(backend.port)]))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(d.control_socket)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")   # never finishes its headers
    start = time.monotonic()
    data = s.recv(4096)
    elapsed = time.monotonic() - start
    s.close()
    assert 8 <= elapsed <= 15, elapsed
    assert data == b"" or data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.1 400"), data[:100]


def test_connection_cap_answers_503_beyond_64(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    d = daemon(single_pool_config(ports, [member(backend.port)]))
    held = []
    try:
        for _ in range(64):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(d.control_socket)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200 ")
            held.append(s)
        extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        extra.settimeout(5)
        extra.connect(d.control_socket)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = extra.recv(4096)
        extra.close()
        assert reply.startswith(b"HTTP/1.1 503 "), reply[:200]
        assert b"too many control connections: at most 64" in reply
    finally:
        for s in held:
            s.close()
    # Closed connections free their slots.
    deadline = time.monotonic() + 5
    while True:
        status, _, _ = d.request("GET", "/healthz")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200


def test_sighup_keeps_acknowledged_api_updates(daemon, tcp_backend, port_range, flowgatectl_bin):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(3)
    cfg = single_pool_config(ports[:1], [member(backend.port)])
    d = daemon(cfg)
    arn = arn_of(d)
    ctl(flowgatectl_bin, d, "listener", "update", arn, "--port-ranges", str(ports[1]))
    d.sighup(wait=True)
    assert d.log_lines("reload_applied"), d.stderr_text()
    shown = json.loads(ctl(flowgatectl_bin, d, "listener", "show", arn, "--json").stdout)["Listener"]
    assert shown["PortRanges"] == [{"FromPort": ports[1], "ToPort": ports[1]}]
    assert tcp_exchange(ports[1], b"kept") == b"kept"
    assert refused(ports[0])


def test_protocol_change_moves_the_ports_to_the_other_protocol(daemon, tcp_backend, udp_backend, port_range, flowgatectl_bin):
    from harness import udp_bound_ports, udp_exchange
    listen, backend_port = port_range(2)
    tcp_echo = tcp_backend("t", mode="echo", port=backend_port)
    udp_echo = udp_backend("u", mode="echo", port=backend_port)
    # Which sockets are bound is what this checks: one per port (lookup mode: test_port_lookup.py).
    d = daemon(single_pool_config([listen], [member(backend_port)], tuning={"port_ranges": "per_port"}))
    arn = arn_of(d)
    assert tcp_exchange(listen, b"tcp") == b"tcp"
    out = ctl(flowgatectl_bin, d, "listener", "update", arn, "--protocol", "UDP", "--json")
    assert json.loads(out.stdout)["Listener"]["Protocol"] == "UDP"
    assert refused(listen), "the TCP port stayed open after the move to UDP"
    assert listen in udp_bound_ports()
    reply, _ = udp_exchange(listen, b"udp datagram")
    assert reply == b"udp datagram"
    ctl(flowgatectl_bin, d, "listener", "update", arn, "--protocol", "TCP")
    assert listen not in udp_bound_ports()
    assert tcp_exchange(listen, b"back") == b"back"
