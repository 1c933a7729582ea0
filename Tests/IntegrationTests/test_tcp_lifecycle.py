"""flowgated's life: start errors, the state-directory lock, drain on
SIGTERM, --check-config, SIGHUP (issue 2, docs/architecture.md §11)."""
from __future__ import annotations

import hashlib
import signal
import socket
import threading
import time

import pytest

from harness import (member, run_check_config, single_pool_config, tcp_exchange, wait_port_state)


def test_port_held_by_another_program_fails_start_naming_listener_and_port(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo")
    ports = port_range(3)
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", ports[1]))
    holder.listen(1)
    try:
        cfg = single_pool_config(ports, [member(backend.port)])
        arn = cfg["accelerators"][0]["listeners"][0]["ListenerArn"]
        d = daemon(cfg, wait_ready=False)
        assert d.wait_exit() == 1
        errors = d.log_lines("start_failed")
        assert len(errors) == 1, d.stderr_text()
        assert f"listener {arn} port {ports[1]}: cannot bind TCP 127.0.0.1:{ports[1]}: Address already in use" in errors[0]
        assert not any("READY=1" in m.split("\n") for m in d.notifications)
        # Never half-bound: the other ports of the range are free again.
        assert wait_port_state(ports[0], listening=False, timeout=2)
    finally:
        holder.close()


def test_second_daemon_on_the_same_state_directory_refuses(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo")
    first_ports, second_ports = port_range(1), port_range(1)
    first = daemon(single_pool_config(first_ports, [member(backend.port)]))
    second = daemon(single_pool_config(second_ports, [member(backend.port)]), wait_ready=False,
                    state_file=first.state_file)
    assert second.wait_exit() == 1
    lines = second.log_lines("already_running")
    assert len(lines) == 1
    assert f"lock={first.state_file.parent}/flowgated.lock" in lines[0]
    assert first.running
    assert tcp_exchange(first_ports[0], b"still here") == b"still here"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sigterm_drains_an_in_flight_transfer(daemon, tcp_backend, port_range):
    sink = tcp_backend("digest", mode="digest")
    (port,) = port_range(1)
    d = daemon(single_pool_config([port], [member(sink.port)]))
    chunk = bytes(range(256)) * 4096          # 1 MiB
    total = 24
    expected = hashlib.sha256(chunk * total).hexdigest()
    reply: list[bytes] = []
    errors: list[BaseException] = []
    started = threading.Event()

    def client() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                for i in range(total):
                    s.sendall(chunk)
                    if i == 0:
                        started.set()
                    time.sleep(0.05)        # about 1.2 s in flight
                s.shutdown(socket.SHUT_WR)
                data = b""
                while (b := s.recv(4096)):
                    data += b
                reply.append(data)
        except BaseException as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=client)
    t.start()
    assert started.wait(5)
    d.signal(signal.SIGTERM)
    # Listening stops at once: a new client is refused while the transfer goes on.
    assert wait_port_state(port, listening=False, timeout=2)
    t.join(30)
    assert not errors, errors
    assert reply == [f"{total << 20} {expected}\n".encode()]
    assert d.wait_exit(15) == 0
    assert d.log_lines("drained")
    assert any("STOPPING=1" in m.split("\n") for m in d.notifications)


def test_drain_deadline_cuts_a_stalled_flow(daemon, tcp_backend, port_range):
    hold = tcp_backend("hold", mode="hold")
    (port,) = port_range(1)
    cfg = single_pool_config([port], [member(hold.port)], tuning={"drain_timeout": 1})
    d = daemon(cfg)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        assert hold.wait_accepted(1)
        began = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.wait_exit(10) == 0
        assert 0.8 <= time.monotonic() - began < 5
    assert d.log_lines("drain_timeout")


def test_second_sigterm_during_drain_stops_at_once(daemon, tcp_backend, port_range):
    hold = tcp_backend("hold", mode="hold")
    (port,) = port_range(1)
    d = daemon(single_pool_config([port], [member(hold.port)], tuning={"drain_timeout": 60}))
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        assert hold.wait_accepted(1)
        d.signal(signal.SIGTERM)
        d.wait_notification("STOPPING=1")
        began = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.wait_exit(10) == 0
        assert time.monotonic() - began < 3
    cut = d.log_lines("drain_cut")
    assert len(cut) == 1 and "active_flows=1" in cut[0]


def test_check_config_accepts_a_good_file_and_binds_nothing(tmp_path, tcp_backend, port_range):
    from harness import dump_config
    (port,) = port_range(1)
    path = tmp_path / "good.yaml"
    path.write_text(dump_config(single_pool_config([port], [member(9)], state_file=str(tmp_path / "state.json"))))
    done = run_check_config(path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "configuration ok"
    assert wait_port_state(port, listening=False, timeout=1)


def test_check_config_rejects_a_bad_file_with_the_located_message(tmp_path, port_range):
    from harness import dump_config
    (port,) = port_range(1)
    cfg = single_pool_config([port], [member(9)], lb_algorithm="ROUND-ROBIN")
    path = tmp_path / "bad.yaml"
    path.write_text(dump_config(cfg))
    done = run_check_config(path)
    assert done.returncode == 1
    assert "configuration ok" not in done.stdout
    assert "pools[0].lb_algorithm" in done.stderr
    assert '"ROUND-ROBIN" is not one of ROUND_ROBIN, LEAST_CONNECTIONS, SOURCE_IP' in done.stderr
    assert "bad.yaml:" in done.stderr


def test_sighup_with_an_invalid_file_keeps_running_and_a_valid_one_moves_ports(daemon, tcp_backend, port_range):
    backend = tcp_backend("echo")
    old_ports, new_ports = port_range(2), port_range(2)
    cfg = single_pool_config(old_ports, [member(backend.port)])
    d = daemon(cfg)
    d.write_config("pools: [this is not a config")
    d.sighup(wait=True)
    assert d.log_lines("reload_rejected")
    assert tcp_exchange(old_ports[0], b"x") == b"x"

    cfg["accelerators"][0]["listeners"][0]["PortRanges"] = [{"FromPort": new_ports[0], "ToPort": new_ports[1]}]
    d.write_config(cfg)
    d.sighup(wait=True)
    assert d.log_lines("reload_applied")
    assert tcp_exchange(new_ports[1], b"y") == b"y"
    assert wait_port_state(old_ports[0], listening=False, timeout=2)
