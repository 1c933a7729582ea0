"""The proxies under test: config generation, start, readiness, process ids.

Every proxy runs two workers (flowgated `workers: 2`, HAProxy `nbthread 2`,
nginx `worker_processes 2`) so that none gets more of this machine than another.
"""
import os
import socket
import time
import uuid
from string import Template

import procfs
from services import SERVICES, UDP_CAPABLE

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs")
READY_SECONDS = 20


class ProxyStartError(Exception):
    pass


def _template(name):
    with open(os.path.join(CONFIGS, name)) as f:
        return Template(f.read())


def _log_tail(path, lines=6):
    try:
        with open(path, errors="replace") as f:
            text = f.read().strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


class Proxy:
    """One proxy under test; `direct` is the subclass without a process."""

    def __init__(self, name, ports, registry):
        self.name = name
        self.ports = ports
        self.registry = registry
        self.proc = None
        self.workdir = None
        self.log_path = None
        self.wrapper = []  # e.g. valgrind for bench/callgrind
        self.ready_seconds = READY_SECONDS

    def supports_udp(self):
        return self.name in UDP_CAPABLE

    def port(self, service):
        return self.ports.proxy(self.name, service)

    def pids(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return procfs.process_tree(self.proc.pid)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, workdir, cpu):
        os.makedirs(workdir, exist_ok=True)
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "proxy.log")
        argv, env = self.prepare(workdir)
        self.proc = self.registry.start(self.name, self.wrapper + argv, cpu=cpu, log_path=self.log_path, env=env)
        self.wait_ready()

    def stop(self):
        if self.proc is not None:
            self.registry.stop(self.proc)
            self.proc = None

    def expected_ports(self):
        tcp = {self.port(s.name) for s in SERVICES if s.tcp}
        udp = {self.port(s.name) for s in SERVICES if s.udp and self.supports_udp()}
        return tcp, udp

    def wait_ready(self):
        tcp, udp = self.expected_ports()
        deadline = time.monotonic() + self.ready_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProxyStartError(f"exited with status {self.proc.returncode}: {_log_tail(self.log_path)}")
            if tcp <= procfs.tcp_listening_ports() and udp <= procfs.udp_bound_ports():
                self.after_ready()
                return
            time.sleep(0.1)
        missing = sorted(tcp - procfs.tcp_listening_ports()) + [f"{p}/udp" for p in sorted(udp - procfs.udp_bound_ports())]
        raise ProxyStartError(f"ports {missing} not bound within {self.ready_seconds} s: {_log_tail(self.log_path)}")

    def after_ready(self):
        time.sleep(0.3)  # let workers finish their own start-up before RSS is read

    def prepare(self, workdir):
        raise NotImplementedError


class Direct(Proxy):
    def start(self, workdir, cpu):
        pass

    def stop(self):
        pass

    def pids(self):
        return []

    def alive(self):
        return True


class HAProxy(Proxy):
    def __init__(self, name, ports, registry, splice):
        super().__init__(name, ports, registry)
        self.splice = splice

    def prepare(self, workdir):
        sections = []
        for s in SERVICES:
            if not s.tcp:
                continue  # HAProxy has no UDP proxying
            sections.append(f"listen {s.name}\n    bind 127.0.0.1:{self.port(s.name)}\n"
                            f"    server {s.name}_1 127.0.0.1:{self.ports.backend(s.name)}\n")
        splice = "    option splice-request\n    option splice-response" if self.splice else ""
        text = _template("haproxy.cfg.tmpl").substitute(
            workdir=workdir, splice_options=splice, listen_sections="\n".join(sections))
        path = os.path.join(workdir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(text)
        return ["haproxy", "-db", "-f", path], None


class Nginx(Proxy):
    def prepare(self, workdir):
        sections = []
        for s in SERVICES:
            upstream = f"127.0.0.1:{self.ports.backend(s.name)}"
            if s.tcp:
                sections.append(f"    server {{\n        listen 127.0.0.1:{self.port(s.name)} reuseport backlog=4096;\n"
                                f"        proxy_pass {upstream};\n    }}")
            if s.udp:
                # proxy_timeout 30s: the UDP idle timeout flowgated uses (design.md section 3).
                sections.append(f"    server {{\n        listen 127.0.0.1:{self.port(s.name)} udp reuseport;\n"
                                f"        proxy_pass {upstream};\n        proxy_timeout 30s;\n    }}")
        text = _template("nginx-proxy.conf.tmpl").substitute(workdir=workdir, server_sections="\n".join(sections))
        path = os.path.join(workdir, "nginx.conf")
        with open(path, "w") as f:
            f.write(text)
        return ["nginx", "-p", workdir, "-c", path], None


class Flowgated(Proxy):
    """flowgated with a YAML config in the shape of design.md section 9."""

    NAMESPACE = uuid.UUID("6b1f3c0e-2d4a-4f7b-9a51-0c8e5d7f3a21")

    def __init__(self, name, ports, registry, binary, unavailable_reason):
        super().__init__(name, ports, registry)
        self.binary = binary
        self.unavailable_reason = unavailable_reason
        self.notify = None

    def _id(self, text):
        return str(uuid.uuid5(self.NAMESPACE, text))

    def config_text(self, workdir):
        accelerator = self._id("accelerator")
        accelerator_arn = f"arn:aws:globalaccelerator::123456789012:accelerator/{accelerator}"
        listeners, pools = [], []
        for s in SERVICES:
            for protocol, wanted in (("TCP", s.tcp), ("UDP", s.udp)):
                if not wanted:
                    continue
                pool_id = self._id(f"pool-{s.name}-{protocol}")
                listener_id = self._id(f"listener-{s.name}-{protocol}").replace("-", "")[:8]
                port = self.port(s.name)
                listeners.append(
                    f"      - ListenerArn: {accelerator_arn}/listener/{listener_id}\n"
                    f"        PortRanges: [{{FromPort: {port}, ToPort: {port}}}]\n"
                    f"        Protocol: {protocol}\n"
                    f"        ClientAffinity: NONE\n"
                    f"        pool_id: {pool_id}\n"
                    f"        bind: 127.0.0.1")
                pools.append(
                    f"  - id: {pool_id}\n"
                    f"    name: {s.name}-{protocol.lower()}\n"
                    f"    protocol: {protocol}\n"
                    f"    lb_algorithm: ROUND_ROBIN\n"
                    f"    members:\n"
                    f"      - {{address: 127.0.0.1, protocol_port: {self.ports.backend(s.name)}, weight: 1}}")
        return _template("flowgate.yaml.tmpl").substitute(
            workdir=workdir, accelerator_arn=accelerator_arn, listeners="\n".join(listeners),
            project_id=uuid.uuid5(self.NAMESPACE, "project").hex, pools="\n".join(pools))

    def prepare(self, workdir):
        if self.unavailable_reason:
            raise ProxyStartError(self.unavailable_reason)
        path = os.path.join(workdir, "flowgate.yaml")
        with open(path, "w") as f:
            f.write(self.config_text(workdir))
        # sd_notify: flowgated sends READY=1 once every listener is bound (design.md section 2).
        notify_path = os.path.join(workdir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        self.notify.setblocking(False)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        return [self.binary, "--config", path], env

    def after_ready(self):
        # The ports are bound; give READY=1 up to 3 s more (it may come after the bind).
        deadline = time.monotonic() + 3
        while self.notify is not None and time.monotonic() < deadline:
            try:
                if b"READY=1" in self.notify.recv(4096):
                    break
            except BlockingIOError:
                time.sleep(0.05)
        super().after_ready()

    def stop(self):
        super().stop()
        if self.notify is not None:
            self.notify.close()
            self.notify = None


def make_proxies(names, ports, registry, flowgated_binary, flowgated_unavailable):
    made = {}
    for name in names:
        if name == "direct":
            made[name] = Direct(name, ports, registry)
        elif name == "flowgated":
            made[name] = Flowgated(name, ports, registry, flowgated_binary, flowgated_unavailable)
        elif name == "haproxy":
            made[name] = HAProxy(name, ports, registry, splice=False)
        elif name == "haproxy-splice":
            made[name] = HAProxy(name, ports, registry, splice=True)
        elif name == "nginx":
            made[name] = Nginx(name, ports, registry)
        else:
            raise SystemExit(f"bench: unknown proxy {name!r}; known: direct flowgated haproxy haproxy-splice nginx")
    return made
