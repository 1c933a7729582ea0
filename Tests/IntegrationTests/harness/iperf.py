"""iperf3 server and client with bounded run times, returning parsed JSON (-J).

Through the proxy, iperf3 opens a control connection and then data
connections to the same port: they must reach the same iperf3 server, so point
the listener at a pool with one member (or use SOURCE_IP affinity).
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from typing import Any, Sequence

from .ports import tcp_listening_ports


def iperf3_path() -> str | None:
    return shutil.which("iperf3")


class Iperf3Error(AssertionError):
    pass


class Iperf3Server:
    """`iperf3 -s` on host:port until stop(). A context manager."""

    def __init__(self, port: int, host: str = "127.0.0.1", extra: Sequence[str] = (), timeout: float = 10.0):
        exe = iperf3_path()
        if exe is None:
            raise FileNotFoundError("iperf3 is not installed (make test installs it)")
        self.port = port
        self.host = host
        self.proc = subprocess.Popen([exe, "-s", "-B", host, "-p", str(port), *extra],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        # Wait for LISTEN without connecting: a probe connection would be read
        # as a test's control connection.
        deadline = time.monotonic() + timeout
        while port not in tcp_listening_ports():
            if self.proc.poll() is not None:
                raise Iperf3Error(f"iperf3 -s -p {port} exited {self.proc.returncode}: "
                                  f"{self.proc.stderr.read().decode(errors='replace')}")
            if time.monotonic() > deadline:
                self.stop()
                raise Iperf3Error(f"iperf3 -s -p {port} did not listen within {timeout} s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()

    def __enter__(self) -> "Iperf3Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def iperf3_server(port: int, host: str = "127.0.0.1", extra: Sequence[str] = ()) -> Iperf3Server:
    return Iperf3Server(port, host, extra)


def iperf3_client(port: int, host: str = "127.0.0.1", seconds: int = 3, udp: bool = False,
                  bitrate: str | None = None, reverse: bool = False, parallel: int = 1,
                  length: str | None = None, extra: Sequence[str] = (),
                  timeout: float | None = None) -> dict[str, Any]:
    """Run `iperf3 -c` for `seconds` (bounded: the process is killed at
    `timeout`, default seconds + 20) and return its JSON report. Raises
    Iperf3Error when iperf3 fails or reports an error."""
    exe = iperf3_path()
    if exe is None:
        raise FileNotFoundError("iperf3 is not installed (make test installs it)")
    cmd = [exe, "-c", host, "-p", str(port), "-t", str(seconds), "-J", "--connect-timeout", "5000"]
    if udp:
        cmd.append("-u")
    if bitrate:
        cmd += ["-b", bitrate]
    if reverse:
        cmd.append("-R")
    if parallel > 1:
        cmd += ["-P", str(parallel)]
    if length:
        cmd += ["-l", length]
    cmd += list(extra)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout if timeout is not None else seconds + 20)
    except subprocess.TimeoutExpired as e:
        raise Iperf3Error(f"{' '.join(cmd)} did not finish in {e.timeout} s") from None
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise Iperf3Error(f"{' '.join(cmd)} exited {done.returncode} without JSON: "
                          f"{done.stdout[-2000:]} {done.stderr[-2000:]}") from None
    if done.returncode != 0 or "error" in result:
        raise Iperf3Error(f"{' '.join(cmd)} exited {done.returncode}: {result.get('error')} {done.stderr[-2000:]}")
    return result


def received_bps(result: dict[str, Any]) -> float:
    """Receiver-side bits per second of a report (TCP: sum_received; UDP: sum)."""
    end = result["end"]
    if "sum_received" in end:
        return float(end["sum_received"]["bits_per_second"])
    return float(end["sum"]["bits_per_second"])


def sent_bytes(result: dict[str, Any]) -> int:
    end = result["end"]
    summary = end.get("sum_sent") or end["sum"]
    return int(summary["bytes"])
