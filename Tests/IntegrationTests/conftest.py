"""Fixtures for Flowgate's black-box tests. Helpers live in harness/.

    def test_forwarding(daemon, tcp_backend, port_range):
        backend = tcp_backend("a", mode="id")
        ports = port_range(3)
        d = daemon(config_with(ports, backend.port))   # waits for READY=1
        ...

Every daemon, backend, iperf3 server and port reservation made through these
fixtures is stopped/released at teardown, also when the test fails.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (Daemon, Iperf3Server, TcpBackend, UdpBackend, free_port_range,  # noqa: E402
                     flowgatectl_bin as _flowgatectl_bin, flowgated_bin as _flowgated_bin,
                     release_ports, REPO_ROOT)


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        # CI always builds first (make test); outside it, say what is missing.
        if os.environ.get("FLOWGATE_REQUIRE_BINARIES") == "1":
            pytest.fail(f"{what} not found at {path} (FLOWGATE_REQUIRE_BINARIES=1)")
        pytest.skip(f"{what} not built at {path}: run `swift build` (or set {what.upper()}=path)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def flowgated_bin() -> Path:
    """Path of the flowgated binary; skips the test when it is not built."""
    return _require(_flowgated_bin(), "flowgated")


@pytest.fixture
def flowgatectl_bin() -> Path:
    return _require(_flowgatectl_bin(), "flowgatectl")


@pytest.fixture
def port_range():
    """port_range(n, proto=("tcp","udp"), host="127.0.0.1") -> list of n free consecutive ports."""
    held: list[int] = []

    def make(n: int = 1, proto=("tcp", "udp"), host: str = "127.0.0.1") -> list[int]:
        ports = free_port_range(n, proto, host)
        held.extend(ports)
        return ports

    yield make
    release_ports(held)


@pytest.fixture
def daemon(request):
    """daemon(config, wait_ready=True, **Daemon kwargs) -> started Daemon.

    With wait_ready=False the process is started but not waited for (e.g. to
    check that a bad start exits non-zero: `d.wait_exit()`)."""
    made: list[Daemon] = []

    def make(config, wait_ready: bool = True, **kwargs) -> Daemon:
        binary = kwargs.pop("binary", None) or _require(_flowgated_bin(), "flowgated")
        d = Daemon(config, binary=binary, **kwargs)
        made.append(d)
        d.start(wait_ready=wait_ready)
        return d

    yield make
    for d in made:
        d.stop()
        # Captured output: pytest shows it only for a failed test.
        print(f"--- {d!r} exit={d.returncode} stderr (last 4000 chars) ---\n{d.stderr_text()[-4000:]}")
        d.cleanup()


def _backend_factory(cls):
    """A fixture body that makes `cls(name, mode=..., port=..., host=...)` backends and stops them all at teardown."""
    made = []

    def make(name: str, mode: str = "echo", port: int = 0, host: str = "127.0.0.1", **kwargs):
        b = cls(name, mode=mode, port=port, host=host, **kwargs)
        made.append(b)
        return b

    return made, make


@pytest.fixture
def tcp_backend():
    """tcp_backend(name, mode="echo", port=0, host="127.0.0.1") -> TcpBackend."""
    made, make = _backend_factory(TcpBackend)
    yield make
    for b in made:
        b.stop()


@pytest.fixture
def udp_backend():
    """udp_backend(name, mode="echo", port=0, host="127.0.0.1") -> UdpBackend."""
    made, make = _backend_factory(UdpBackend)
    yield make
    for b in made:
        b.stop()


@pytest.fixture
def iperf3_server():
    """iperf3_server(port, host="127.0.0.1") -> running Iperf3Server (skips if iperf3 is missing)."""
    import shutil
    if shutil.which("iperf3") is None:
        pytest.skip("iperf3 not installed (make test installs it)")
    made: list[Iperf3Server] = []

    def make(port: int, host: str = "127.0.0.1", extra=()) -> Iperf3Server:
        s = Iperf3Server(port, host, extra)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
