"""Config input that used to take the daemon down (issue 11 §4) and the state
file's stale temporaries (§5): the alias bomb refused fast with bounded memory,
an empty file refused by --check-config and by a SIGHUP reload (the running
listeners stay), and `state.json.tmp.<pid>` files of dead processes removed at
start."""
from __future__ import annotations

import resource
import subprocess
import time

import pytest

from harness import config, listener, member, pool, run_check_config, tcp_exchange, tcp_listening_ports
from harness.paths import flowgated_bin

ACC = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81"


def alias_bomb(members: int = 1000, aliases: int = 1000) -> str:
    """One pool of 1,000 members, anchored, aliased 1,000 times: 45 KB (issue 11 §4)."""
    ms = ", ".join(f"{{address: 127.0.0.1, protocol_port: {1 + i % 60000}}}" for i in range(members))
    return ("project_id: ac80359381a34f04b39a333b0ea5117a\n"
            "accelerators:\n"
            f"  - AcceleratorArn: {ACC}\n"
            "    listeners:\n"
            f"      - {{ListenerArn: {ACC}/listener/0a1b2c3d, PortRanges: [{{FromPort: 18000, ToPort: 18000}}], "
            "Protocol: TCP, pool_id: p}\n"
            f"pools: [&p {{name: p, protocol: TCP, lb_algorithm: ROUND_ROBIN, members: [{ms}]}}"
            + ", *p" * aliases + "]\n")


def test_alias_bomb_is_refused_fast_with_bounded_memory(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    # Before the fix: 15 s and 580 MiB (release build), killed at 60 s on a loaded machine.
    proc = subprocess.run([str(flowgated_bin()), "--config", str(path), "--check-config"],
                          capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - start
    maxrss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"{path}:6:9: the document expands to more than 250000 YAML nodes through aliases" in out, out
    assert elapsed < 5.0, elapsed
    # ru_maxrss of the children so far is the largest of them: this one, or a smaller earlier one.
    assert maxrss_kib < 128 * 1024 or before >= maxrss_kib, maxrss_kib


@pytest.mark.parametrize("text", ["", "# nothing here yet\n\n"])
def test_empty_file_fails_check_config(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    proc = run_check_config(path)
    assert proc.returncode != 0
    assert "the file is empty (no YAML document)" in proc.stdout + proc.stderr


def test_file_without_listeners_needs_explicit_empty_accelerators(tmp_path):
    path = tmp_path / "none.yaml"
    path.write_text("pools: []\n")
    proc = run_check_config(path)
    assert proc.returncode != 0
    assert "no listener is configured" in proc.stdout + proc.stderr
    path.write_text("pools: []\naccelerators: []\n")
    proc = run_check_config(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("text", ["", "# emptied by mistake\n"])
def test_sighup_with_an_empty_file_is_refused_and_listeners_stay(daemon, tcp_backend, port_range, text):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    p = pool([member(backend.port)], name="web")
    # Samples the per-port listening socket (lookup mode binds none per port: test_port_lookup.py).
    d = daemon(config([listener(ports, p["id"])], [p], workers=1, tuning={"port_ranges": "per_port"}))
    assert tcp_exchange(ports[0], b"before") == b"before"
    d.write_config(text)
    d.sighup(wait=True)
    assert d.log_lines("reload_rejected"), d.stderr_text()
    assert any("the file is empty" in line for line in d.log_lines("config_error")), d.stderr_text()
    assert not d.log_lines("reload_applied")
    assert ports[0] in tcp_listening_ports()
    assert tcp_exchange(ports[0], b"after") == b"after"


def test_stale_state_temporaries_are_removed_at_start(daemon, tcp_backend, port_range, tmp_path):
    backend = tcp_backend("echo", mode="echo")
    ports = port_range(1)
    p = pool([member(backend.port)], name="web")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state = state_dir / "state.json"
    # What a kill -9 between write and rename leaves: pids above PID_MAX_LIMIT (2^22) never live.
    stale = [state_dir / "state.json.tmp.4194305", state_dir / "state.json.tmp.4194306"]
    unrelated = [state_dir / "notes.tmp.4194305", state_dir / "state.json.tmp.4194305.keep"]
    for f in stale + unrelated:
        f.write_text("{}")
    d = daemon(config([listener(ports, p["id"])], [p], workers=1), state_file=state)
    assert [f for f in stale if f.exists()] == []
    assert all(f.exists() for f in unrelated)
    assert len(d.log_lines("state_temp_removed")) == 2
    assert tcp_exchange(ports[0], b"x") == b"x"
