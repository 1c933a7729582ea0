"""The loopback services the benchmark forwards, and the port plan.

Backends listen on PORT_BASE + offset; the proxy number k (1-based, order of
PROXY_NAMES) listens on PORT_BASE + 1000*k + offset, so `direct` uses the
backend ports themselves.
"""
from dataclasses import dataclass

PROXY_NAMES = ["direct", "flowgated", "haproxy", "haproxy-splice", "nginx"]
UDP_CAPABLE = {"direct", "flowgated", "nginx"}


@dataclass(frozen=True)
class Service:
    name: str
    offset: int
    tcp: bool
    udp: bool
    # The backend service whose port this one forwards to (None: its own).
    # `httppool` is the `http` backend reached through each proxy's HTTP mode.
    backend: str = None
    # True: each proxy forwards it in its HTTP mode (flowgated pool `protocol:
    # HTTP`, HAProxy `mode http`, nginx `http` proxy_pass), not as a TCP relay.
    http_mode: bool = False


SERVICES = [
    # iperf3 needs its TCP control connection and its UDP datagrams on one port.
    Service("iperf", 201, tcp=True, udp=True),
    Service("http", 280, tcp=True, udp=False),
    Service("sockperf_tcp", 211, tcp=True, udp=False),
    Service("sockperf_udp", 212, tcp=False, udp=True),
    Service("hold", 290, tcp=True, udp=False),
    Service("httppool", 281, tcp=True, udp=False, backend="http", http_mode=True),
]
SERVICE = {s.name: s for s in SERVICES}


class PortPlan:
    def __init__(self, base):
        self.base = base

    def backend(self, service):
        target = SERVICE[service].backend or service
        return self.base + SERVICE[target].offset

    def proxy(self, proxy_name, service):
        if proxy_name == "direct":
            return self.backend(service)
        return self.base + 1000 * PROXY_NAMES.index(proxy_name) + SERVICE[service].offset

    def all_ports(self, proxy_names):
        ports = {self.backend(s.name) for s in SERVICES}
        for name in proxy_names:
            ports |= {self.proxy(name, s.name) for s in SERVICES}
        return sorted(ports)
