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

    def supports_http_mode(self):
        """haproxy-splice is haproxy plus splicing of bodies, which with the
        3-byte responses of the HTTP-mode tests is haproxy again: skipped there."""
        return self.name != "haproxy-splice"

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
        began = time.monotonic()
        deadline = began + self.ready_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ProxyStartError(f"exited with status {self.proc.returncode}: {_log_tail(self.log_path)}")
            if tcp <= procfs.tcp_listening_ports() and udp <= procfs.udp_bound_ports():
                self.after_ready()
                return
            if self.declared_ready():
                if self.steers_ports():
                    # flowgated's default port_ranges (lookup, as root) serves every port of a listener
                    # through one BPF-steered socket, so /proc shows no socket per port: READY=1 is the
                    # signal (sent once every listener serves, docs/architecture.md §20).
                    self.after_ready()
                    return
                deadline = min(deadline, time.monotonic() + 2)  # ready, yet some port is missing
            time.sleep(0.1)
        missing = sorted(tcp - procfs.tcp_listening_ports()) + [f"{p}/udp" for p in sorted(udp - procfs.udp_bound_ports())]
        raise ProxyStartError(f"ports {missing} not bound after {time.monotonic() - began:.0f} s: {_log_tail(self.log_path)}")

    def declared_ready(self):
        """True once the proxy has said it is ready (flowgated: sd_notify READY=1)."""
        return False

    def steers_ports(self):
        """True when its ports need not show up as bound sockets (BPF sk_lookup)."""
        return False

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
            if s.http_mode:
                # HTTP mode with an inserted persistence cookie, as an HTTP_COOKIE pool does
                # (HAProxy configuration manual, 4.2 "cookie").
                sections.append(f"listen {s.name}\n    mode http\n    bind 127.0.0.1:{self.port(s.name)}\n"
                                f"    cookie SRV insert indirect nocache\n"
                                f"    server {s.name}_1 127.0.0.1:{self.ports.backend(s.name)} cookie s1\n")
                continue
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
        sections, http_sections = [], []
        for s in SERVICES:
            upstream = f"127.0.0.1:{self.ports.backend(s.name)}"
            if s.http_mode:
                # nginx's usual HTTP reverse proxy: upstream connections kept alive
                # (keepalive needs HTTP/1.1 and an empty Connection header upstream).
                http_sections.append(
                    f"    upstream {s.name} {{\n        server {upstream};\n        keepalive 64;\n"
                    f"        keepalive_requests 1000000;\n    }}\n"
                    f"    server {{\n        listen 127.0.0.1:{self.port(s.name)} reuseport backlog=4096;\n"
                    f"        location / {{\n            proxy_pass http://{s.name};\n"
                    f"            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n"
                    f"        }}\n    }}")
                continue
            if s.tcp:
                sections.append(f"    server {{\n        listen 127.0.0.1:{self.port(s.name)} reuseport backlog=4096;\n"
                                f"        proxy_pass {upstream};\n    }}")
            if s.udp:
                # proxy_timeout 30s: the UDP idle timeout flowgated uses (docs/architecture.md section 2).
                sections.append(f"    server {{\n        listen 127.0.0.1:{self.port(s.name)} udp reuseport;\n"
                                f"        proxy_pass {upstream};\n        proxy_timeout 30s;\n    }}")
        text = _template("nginx-proxy.conf.tmpl").substitute(
            workdir=workdir, server_sections="\n".join(sections), http_sections="\n".join(http_sections))
        path = os.path.join(workdir, "nginx.conf")
        with open(path, "w") as f:
            f.write(text)
        return ["nginx", "-p", workdir, "-c", path], None


class Flowgated(Proxy):
    """flowgated with a YAML config in the shape of docs/architecture.md section 14.

    Two spellings of the same config are written: the section 9 form, which
    leaves defaults out, and a full form that spells out every field of the
    model (what a strict decoder needs). `flowgated --check-config` picks the
    first one the binary accepts, once per run.
    """

    NAMESPACE = uuid.UUID("6b1f3c0e-2d4a-4f7b-9a51-0c8e5d7f3a21")
    CHECK_SECONDS = 30

    def __init__(self, name, ports, registry, binary, unavailable_reason):
        super().__init__(name, ports, registry)
        self.binary = binary
        self.unavailable_reason = unavailable_reason
        self.notify = None
        self.ready_seen = False
        self.form = None  # "short" or "full" once --check-config accepted one
        self.udp_enabled = True
        self.udp_failure = None

    def supports_udp(self):
        return self.udp_enabled

    def start(self, workdir, cpu):
        """Starts with TCP and UDP listeners; if that fails, once more TCP-only,
        so that a data plane without UDP yet still gets its TCP figures."""
        try:
            super().start(workdir, cpu)
        except ProxyStartError as error:
            self.stop()
            if not self.udp_enabled or self.unavailable_reason:
                raise
            self.udp_enabled = False
            try:
                super().start(workdir + "-tcp-only", cpu)
            except ProxyStartError:
                self.udp_enabled = True
                self.stop()
                raise error
            self.udp_failure = f"flowgated did not start with UDP listeners ({error}); it ran TCP-only"

    def _id(self, text):
        return str(uuid.uuid5(self.NAMESPACE, text))

    def config_text(self, workdir, full=False):
        accelerator = self._id("accelerator")
        accelerator_arn = f"arn:aws:globalaccelerator::123456789012:accelerator/{accelerator}"
        listeners, pools = [], []
        for s in SERVICES:
            for protocol, wanted in (("TCP", s.tcp), ("UDP", s.udp and self.udp_enabled)):
                if not wanted:
                    continue
                pool_id = self._id(f"pool-{s.name}-{protocol}")
                listener_id = self._id(f"listener-{s.name}-{protocol}").replace("-", "")[:8]
                port = self.port(s.name)
                listener = (f"      - ListenerArn: {accelerator_arn}/listener/{listener_id}\n"
                            f"        PortRanges: [{{FromPort: {port}, ToPort: {port}}}]\n"
                            f"        Protocol: {protocol}\n"
                            f"        ClientAffinity: NONE\n"
                            f"        pool_id: {pool_id}\n"
                            f"        bind: 127.0.0.1")
                if full:
                    listener += f"\n        idle_timeout: {340 if protocol == 'TCP' else 30}\n        connection_log: false"
                listeners.append(listener)
                member = f"address: 127.0.0.1, protocol_port: {self.ports.backend(s.name)}, weight: 1"
                if full:
                    member = f"id: {self._id('member-' + s.name + protocol)}, name: backend, {member}, admin_state_up: true"
                pool_protocol = "HTTP" if s.http_mode else protocol
                pool = (f"  - id: {pool_id}\n"
                        f"    name: {s.name}-{protocol.lower()}\n"
                        f"    protocol: {pool_protocol}\n"
                        f"    lb_algorithm: ROUND_ROBIN\n")
                if s.http_mode:
                    # HTTP mode: requests parsed and balanced one by one, a persistence cookie inserted.
                    pool += "    session_persistence: {type: HTTP_COOKIE}\n"
                if full:
                    pool += ("    description: benchmark\n"
                             "    slow_start: {enable: false, duration: 30}\n"
                             "    connection_drain: {enable: false, timeout: 300}\n"
                             "    admin_state_up: true\n")
                pools.append(pool + f"    members:\n      - {{{member}}}")
        text = _template("flowgate.yaml.tmpl").substitute(
            workdir=workdir, accelerator_arn=accelerator_arn, listeners="\n".join(listeners),
            project_id=uuid.uuid5(self.NAMESPACE, "project").hex, pools="\n".join(pools))
        if full:
            text = text.replace("  allow_unsigned: true\n",
                                "  allow_unsigned: true\n  region: us-west-2\n"
                                "  aws_credentials: []\n  huawei_credentials: []\n"
                                "tuning: {drain_timeout: 10, max_udp_flows: 262144, max_sticky_entries: 1048576,"
                                " udp_socket_buffer: 4194304, tcp_scratch_buffer: 1048576,"
                                " tcp_max_pending: 1048576, connect_timeout: 3}\n")
            text = text.replace("  - AcceleratorArn: " + accelerator_arn + "\n",
                                "  - AcceleratorArn: " + accelerator_arn + "\n    Name: bench\n")
            text += "healthmonitors: []\n"
        return text

    def _check(self, path):
        code, out = self.registry.run("flowgated-check", [self.binary, "--config", path, "--check-config"],
                                      self.CHECK_SECONDS)
        return code == 0, " | ".join(out.strip().splitlines()[-4:])

    def prepare(self, workdir):
        if self.unavailable_reason:
            raise ProxyStartError(self.unavailable_reason)
        paths = {}
        for form in ("short", "full"):
            paths[form] = os.path.join(workdir, f"flowgate-{form}.yaml")
            with open(paths[form], "w") as f:
                f.write(self.config_text(workdir, full=(form == "full")))
        if self.form is None:
            problems = []
            for form in ("short", "full"):
                accepted, output = self._check(paths[form])
                if accepted:
                    self.form = form
                    break
                problems.append(f"{form} form: {output}")
            else:
                raise ProxyStartError("--check-config rejected the config: " + " ; ".join(problems))
        # sd_notify: flowgated sends READY=1 once every listener is bound (docs/architecture.md section 11).
        notify_path = os.path.join(workdir, "notify.sock")
        self.ready_seen = False
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(notify_path)
        self.notify.setblocking(False)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        return [self.binary, "--config", paths[self.form]], env

    def steers_ports(self):
        return True

    def declared_ready(self):
        while self.notify is not None and not self.ready_seen:
            try:
                if b"READY=1" in self.notify.recv(4096):
                    self.ready_seen = True
            except BlockingIOError:
                break
        return self.ready_seen

    def after_ready(self):
        # The ports are bound; give READY=1 up to 3 s more (it may come after the bind).
        deadline = time.monotonic() + 3
        while not self.declared_ready() and time.monotonic() < deadline:
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
