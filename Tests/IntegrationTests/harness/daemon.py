"""Spawn the built flowgated on a test config and watch it like systemd does.

The daemon gets a per-test directory (short, under /tmp, because AF_UNIX paths
are limited to 108 bytes) holding its config, state file, control socket and
log files, and a NOTIFY_SOCKET: an AF_UNIX datagram socket this module owns and
reads, speaking sd_notify's protocol (newline-separated KEY=VALUE lines per
datagram, see sd_notify(3)). start() returns once READY=1 arrives.
"""
from __future__ import annotations

import atexit
import copy
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .paths import REPO_ROOT, flowgated_bin

READY_TIMEOUT = 20.0
_live: "set[subprocess.Popen]" = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last resort when pytest ends without teardown (e.g. interrupted)."""
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
STOP_GRACE = 5.0  # teardown: SIGTERM, then SIGKILL after this long


class DaemonError(AssertionError):
    """The daemon did not do what the test waited for (carries its stderr)."""


def dump_config(config: Mapping[str, Any] | str) -> str:
    """YAML text of a config dict (JSON when PyYAML is missing: YAML 1.2 is a
    superset of JSON). A string is taken as the file's text, unchanged."""
    if isinstance(config, str):
        return config
    try:
        import yaml
    except ImportError:
        return json.dumps(config, indent=2)
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False)


def run_check_config(path: str | os.PathLike, binary: str | os.PathLike | None = None,
                     timeout: float = 30.0, extra_args: Sequence[str] = ()) -> subprocess.CompletedProcess:
    """`flowgated --config PATH --check-config`; returns the CompletedProcess
    (returncode, stdout, stderr as text)."""
    exe = str(binary or flowgated_bin())
    return subprocess.run([exe, "--config", str(path), "--check-config", *extra_args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over the daemon's control Unix socket."""

    def __init__(self, path: str, timeout: float = 10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class NotifyListener:
    """The test side of NOTIFY_SOCKET: collects every datagram in order."""

    def __init__(self, path: str, on_message: Callable[[int, str], None] | None = None):
        self.path = path
        # Called on the listener thread as each message arrives, before any
        # waiter wakes: lets a test sample state at that instant (e.g. that
        # every port already listens when READY=1 arrives).
        self.on_message = on_message
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(path)
        self._sock.settimeout(0.1)
        self._cond = threading.Condition()
        self.messages: list[str] = []
        self.times: list[float] = []   # time.monotonic() of each message
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="notify-listener", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            message = data.decode("utf-8", "replace")
            if self.on_message is not None:
                try:
                    self.on_message(len(self.messages), message)
                except Exception as e:  # a test hook must not kill the listener
                    message += f"\n# on_message raised {e!r}"
            with self._cond:
                self.messages.append(message)
                self.times.append(time.monotonic())
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], after: int, timeout: float,
                 alive: Callable[[], bool] = lambda: True) -> int | None:
        """Index of the first message at or after `after` matching predicate,
        or None on timeout or when alive() turns false."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = after
            while True:
                while i < len(self.messages):
                    if predicate(self.messages[i]):
                        return i
                    i += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not alive():
                    return None
                self._cond.wait(min(remaining, 0.1))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


def has_line(line: str) -> Callable[[str], bool]:
    """Predicate: a notify message containing exactly this KEY=VALUE line."""
    return lambda message: line in message.split("\n")


class Daemon:
    """One flowgated process. Construct, then start() (the fixture does both).

    config: a dict in the YAML shape of docs/architecture.md §14, or the file's text as a str
    (for invalid-file tests; then no paths are rewritten). For a dict,
    `state_file` and `control.unix_socket` are set to the daemon's directory
    unless given here (state_file=/control_socket=), e.g. to point a second
    daemon at the same state directory.
    """

    def __init__(self, config: Mapping[str, Any] | str, *, workdir: str | os.PathLike | None = None,
                 state_file: str | os.PathLike | None = None, control_socket: str | os.PathLike | None = None,
                 args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 binary: str | os.PathLike | None = None, ready_timeout: float = READY_TIMEOUT,
                 on_notify: Callable[[int, str], None] | None = None):
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="fg-", dir="/tmp"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = Path(binary or flowgated_bin())
        self.config_path = self.workdir / "flowgate.yaml"
        self.state_file = Path(state_file) if state_file else self.workdir / "state.json"
        self.control_socket = str(control_socket) if control_socket else str(self.workdir / "control.sock")
        self.notify_path = str(self.workdir / "notify.sock")
        self.args = list(args)
        self.extra_env = dict(env or {})
        self.ready_timeout = ready_timeout
        self.on_notify = on_notify
        self.proc: subprocess.Popen | None = None
        self.notify: NotifyListener | None = None
        self._starts = 0
        self._start_mark = 0
        self._stderr_file = None
        self._stdout_file = None
        self.write_config(config)

    # -- config ------------------------------------------------------------
    def prepare_config(self, config: Mapping[str, Any] | str) -> Mapping[str, Any] | str:
        if isinstance(config, str):
            return config
        prepared = copy.deepcopy(dict(config))
        prepared["state_file"] = str(self.state_file)
        # FLOWGATE_TEST_PORT_RANGES=per_port|lookup runs a suite under that tuning.port_ranges (issue 16), unless
        # the test chose one itself.
        mode = os.environ.get("FLOWGATE_TEST_PORT_RANGES")
        if mode and "port_ranges" not in (prepared.get("tuning") or {}):
            prepared["tuning"] = {**(prepared.get("tuning") or {}), "port_ranges": mode}
        control = dict(prepared.get("control") or {})
        control["unix_socket"] = self.control_socket
        prepared["control"] = control
        return prepared

    def write_config(self, config: Mapping[str, Any] | str) -> Path:
        """(Re)write the config file, e.g. before sighup(). Atomic (rename), so
        a reload never reads half a file."""
        self.config = self.prepare_config(config)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(dump_config(self.config))
        os.replace(tmp, self.config_path)
        return self.config_path

    # -- process -----------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.proc is not None, "daemon not started"
        return self.proc.pid

    @property
    def notifications(self) -> list[str]:
        """Every notify datagram received, over all starts, in order."""
        return list(self.notify.messages) if self.notify else []

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"stderr.{self._starts}.log"

    def stderr_text(self) -> str:
        """stderr of the current (or last) run."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stdout_text(self) -> str:
        try:
            return (self.workdir / f"stdout.{self._starts}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self, event: str | None = None) -> list[str]:
        """stderr lines, optionally only those with `event=<event>`."""
        lines = self.stderr_text().splitlines()
        if event is None:
            return lines
        return [l for l in lines if f"event={event}" in l.split()]

    def start(self, wait_ready: bool = True) -> "Daemon":
        if self.running:
            raise RuntimeError("daemon already running")
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.binary} does not exist: run `swift build` first")
        if self.notify is None:
            self.notify = NotifyListener(self.notify_path, self.on_notify)
        self._starts += 1
        self._start_mark = len(self.notify.messages)
        env = dict(os.environ)
        env.update(self.extra_env)
        env["NOTIFY_SOCKET"] = self.notify_path
        self._close_logs()
        self._stdout_file = open(self.workdir / f"stdout.{self._starts}.log", "wb")
        self._stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([str(self.binary), "--config", str(self.config_path), *self.args],
                                     stdin=subprocess.DEVNULL, stdout=self._stdout_file,
                                     stderr=self._stderr_file, env=env, cwd=self.workdir,
                                     start_new_session=True)
        _live.add(self.proc)
        if wait_ready:
            self.wait_ready()
        return self

    def _fail(self, what: str) -> DaemonError:
        code = self.returncode
        state = "running" if code is None else f"exited with {code}"
        return DaemonError(f"flowgated {what} (pid {self.proc.pid if self.proc else '-'}, {state}).\n"
                           f"notifications: {self.notifications[self._start_mark:]!r}\n"
                           f"--- config {self.config_path} ---\n{dump_config(self.config)}\n"
                           f"--- stderr ---\n{self.stderr_text()[-20000:]}")

    def wait_notification(self, line: str, after: int | None = None, timeout: float = 10.0) -> int:
        """Wait for a notify message holding `line` (e.g. "READY=1") at or after
        index `after` (default: since the current start). Returns its index."""
        assert self.notify is not None
        start = self._start_mark if after is None else after
        i = self.notify.wait_for(has_line(line), start, timeout, alive=lambda: self.running)
        if i is None:
            # The message may have arrived just before the process exited.
            i = self.notify.wait_for(has_line(line), start, 0.2)
        if i is None:
            raise self._fail(f"sent no {line} within {timeout:g} s")
        return i

    def wait_ready(self, timeout: float | None = None) -> int:
        return self.wait_notification("READY=1", timeout=timeout or self.ready_timeout)

    def wait_exit(self, timeout: float = 20.0) -> int:
        """Wait for the process to end by itself; returns the exit code."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise self._fail(f"did not exit within {timeout:g} s") from None

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def sighup(self, wait: bool = False, timeout: float = 20.0) -> int:
        """Send SIGHUP. Returns the notify index to wait from; with wait=True
        also waits for RELOADING=1 then READY=1 after it."""
        mark = len(self.notify.messages) if self.notify else 0
        self.signal(signal.SIGHUP)
        if wait:
            i = self.wait_notification("RELOADING=1", after=mark, timeout=timeout)
            self.wait_notification("READY=1", after=i + 1, timeout=timeout)
        return mark

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit code. After `timeout` the daemon
        is killed (code -9) so the test fails on the code, not on a hang."""
        assert self.proc is not None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill9(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait()

    def restart(self, wait_ready: bool = True, timeout: float = 20.0) -> "Daemon":
        """SIGTERM (SIGKILL after timeout), then start again on the same
        config and state file."""
        if self.running:
            self.terminate(timeout)
        return self.start(wait_ready=wait_ready)

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """Teardown: SIGTERM, SIGKILL after `grace`. Never raises."""
        if self.proc is None:
            return None
        _live.discard(self.proc)
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            except ProcessLookupError:
                pass
        return self.proc.returncode

    def _close_logs(self) -> None:
        for f in (self._stdout_file, self._stderr_file):
            if f is not None:
                f.close()
        self._stdout_file = self._stderr_file = None

    def cleanup(self) -> None:
        """stop() and remove the per-test directory (when this class made it)."""
        self.stop()
        self._close_logs()
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- control API over the Unix socket ------------------------------------
    def request(self, method: str, path: str, body: bytes | str | Mapping | None = None,
                headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> tuple[int, dict, bytes]:
        """One HTTP request on the control socket: (status, headers, body)."""
        hdrs = dict(headers or {})
        if isinstance(body, Mapping):
            body = json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        conn = UnixHTTPConnection(self.control_socket, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"Daemon(pid={self.proc.pid if self.proc else None}, workdir={str(self.workdir)!r})"


def log_fields(line: str) -> dict[str, str]:
    """The key=value fields of one daemon log line (quotes stripped)."""
    out = {}
    for part in line.split():
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v.strip('"')
    return out
