"""Loopback backends: HTTP (nginx), sockperf servers, one-shot iperf3 servers,
and the accept-and-hold server for the idle-connection memory test."""
import os
import selectors
import socket
import threading
import time
from string import Template

import procfs
from proxies import CONFIGS

BACKEND_CPU = 0  # with PIN=1, backends share CPU 0 with the load tools


class BackendError(Exception):
    pass


def wait_listening(port, proc, seconds=10, udp=False):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BackendError(f"backend for port {port} exited with status {proc.returncode}")
        ports = procfs.udp_bound_ports() if udp else procfs.tcp_listening_ports()
        if port in ports:
            return
        time.sleep(0.05)
    raise BackendError(f"backend port {port} not bound within {seconds} s")


class HoldServer:
    """Accepts TCP connections and keeps them open, counting them; runs in a thread."""

    def __init__(self, port):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(4096)
        self.listener.setblocking(False)
        self.held = []
        self.lock = threading.Lock()
        self.release_requested = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="hold-server", daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.held)

    def release_all(self):
        self.release_requested.set()
        deadline = time.monotonic() + 5
        while self.release_requested.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)

    def _loop(self):
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        while not self.stopping.is_set():
            if self.release_requested.is_set():
                with self.lock:
                    for conn in self.held:
                        conn.close()
                    self.held = []
                self.release_requested.clear()
            for _key, _ in selector.select(timeout=0.05):
                for _ in range(256):
                    try:
                        conn, _addr = self.listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    with self.lock:
                        self.held.append(conn)
        selector.close()

    def close(self):
        self.stopping.set()
        self.thread.join(timeout=2)
        with self.lock:
            for conn in self.held:
                conn.close()
            self.held = []
        self.listener.close()


class Backends:
    def __init__(self, registry, ports, workdir):
        self.registry = registry
        self.ports = ports
        self.workdir = workdir
        self.hold = None

    def start(self):
        http_dir = os.path.join(self.workdir, "backend-http")
        os.makedirs(http_dir, exist_ok=True)
        with open(os.path.join(CONFIGS, "nginx-backend.conf.tmpl")) as f:
            text = Template(f.read()).substitute(workdir=http_dir, port=self.ports.backend("http"))
        conf = os.path.join(http_dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(text)
        proc = self.registry.start("backend-http", ["nginx", "-p", http_dir, "-c", conf], cpu=BACKEND_CPU,
                                   log_path=os.path.join(http_dir, "out.log"))
        wait_listening(self.ports.backend("http"), proc)

        port = self.ports.backend("sockperf_tcp")
        proc = self.registry.start("backend-sockperf-tcp",
                                   ["sockperf", "server", "--tcp", "-i", "127.0.0.1", "-p", str(port)],
                                   cpu=BACKEND_CPU, log_path=os.path.join(self.workdir, "sockperf-tcp.log"))
        wait_listening(port, proc)
        port = self.ports.backend("sockperf_udp")
        proc = self.registry.start("backend-sockperf-udp",
                                   ["sockperf", "server", "-i", "127.0.0.1", "-p", str(port)],
                                   cpu=BACKEND_CPU, log_path=os.path.join(self.workdir, "sockperf-udp.log"))
        wait_listening(port, proc, udp=True)

        self.hold = HoldServer(self.ports.backend("hold"))

    def start_iperf_server(self):
        """A one-shot iperf3 server (`-1`): a fresh one per test, so a test that
        went wrong through a proxy cannot leave the next one a stuck server."""
        port = self.ports.backend("iperf")
        proc = self.registry.start("backend-iperf3", ["iperf3", "-s", "-1", "-p", str(port), "-B", "127.0.0.1"],
                                   cpu=BACKEND_CPU, log_path=os.path.join(self.workdir, "iperf3-server.log"))
        wait_listening(port, proc)
        return proc

    def close(self):
        if self.hold is not None:
            self.hold.close()
            self.hold = None
