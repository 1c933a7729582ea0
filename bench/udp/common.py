"""Shared bits of the UDP benchmarks: config, daemon start/stop (by PID)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "Tests" / "IntegrationTests"))

from harness.ports import free_port_range, release_ports, tcp_listening_ports, udp_bound_ports  # noqa: E402,F401

ACCEL = "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81"


def full_config(port: int, backend_port: int, *, also_tcp: bool, workers: int | None = None,
                idle_timeout: int = 30, max_udp_flows: int = 262144, workdir: Path) -> dict:
    """A §9 config with a UDP listener on
    `port` (and a TCP one for iperf3's control connection) to one member."""
    def pool(pid, proto):
        return {"id": pid, "name": proto.lower(), "description": "", "protocol": proto, "lb_algorithm": "ROUND_ROBIN",
                "slow_start": {"enable": False, "duration": 30}, "connection_drain": {"enable": False, "timeout": 300},
                "admin_state_up": True,
                "members": [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{pid}/{backend_port}")), "name": "",
                             "address": "127.0.0.1", "protocol_port": backend_port, "weight": 1,
                             "admin_state_up": True}]}

    def listener(suffix, proto, pid):
        return {"ListenerArn": f"{ACCEL}/listener/{suffix}", "PortRanges": [{"FromPort": port, "ToPort": port}],
                "Protocol": proto, "ClientAffinity": "NONE", "pool_id": pid, "bind": "127.0.0.1",
                "idle_timeout": idle_timeout if proto == "UDP" else 340, "connection_log": False}

    udp_pool, tcp_pool = "161835ef-0207-4300-ab5a-cf9c48f9f5ad", "261835ef-0207-4300-ab5a-cf9c48f9f5ad"
    listeners = [listener("0a1b2c3d", "UDP", udp_pool)]
    pools = [pool(udp_pool, "UDP")]
    if also_tcp:
        listeners.append(listener("0a1b2c3e", "TCP", tcp_pool))
        pools.append(pool(tcp_pool, "TCP"))
    c = {"state_file": str(workdir / "state.json"),
         "control": {"unix_socket": str(workdir / "control.sock")},
         "tuning": {"drain_timeout": 1, "max_udp_flows": max_udp_flows, "udp_socket_buffer": 4194304},
         "project_id": "ac80359381a34f04b39a333b0ea5117a",
         "accelerators": [{"AcceleratorArn": ACCEL, "Name": "", "listeners": listeners}],
         "pools": pools, "healthmonitors": []}
    if workers is not None:
        c["workers"] = workers
    return c


def start_flowgated(binary: Path, config: dict, workdir: Path, port: int, prefix=()) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "flowgate.yaml"
    path.write_text(json.dumps(config, indent=1))   # JSON is YAML
    err = open(workdir / "stderr.log", "wb")
    proc = subprocess.Popen([*prefix, str(binary), "--config", str(path)], stdout=subprocess.DEVNULL, stderr=err,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 20
    while port not in udp_bound_ports():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"flowgated did not bind {port}: {(workdir / 'stderr.log').read_text()[-2000:]}")
        time.sleep(0.05)
    time.sleep(0.2)
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
