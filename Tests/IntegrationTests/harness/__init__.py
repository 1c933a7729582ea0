"""Shared helpers for Flowgate's black-box tests (see ../conftest.py for the
fixtures). Import what you need: `from harness import Daemon, TcpBackend, ...`."""
from .backends import TcpBackend, TcpConnectionRecord, UdpBackend
from .clients import (recv_line, recv_until_eof, tcp_connect, tcp_exchange, tcp_member_name, tcp_roundtrip,
                      udp_exchange, udp_socket)
from .configs import (PROJECT_ID, accelerator_arn, config, listener, listener_arn, member, pool, port_ranges,
                      single_pool_config)
from .daemon import Daemon, DaemonError, NotifyListener, UnixHTTPConnection, dump_config, run_check_config
from .iperf import Iperf3Error, Iperf3Server, iperf3_client, iperf3_path, iperf3_server, received_bps, sent_bytes
from .metrics import Sample, metric_sum, parse_metrics, promtool_check, promtool_path
from .paths import REPO_ROOT, default_config, flowgatectl_bin, flowgated_bin
from .ports import (ephemeral_range, free_port, free_port_range, port_is_free, refused_port, release_ports,
                    tcp_listening_ports, udp_bound_ports, wait_port_state)

__all__ = [
    "TcpBackend", "TcpConnectionRecord", "UdpBackend",
    "recv_line", "recv_until_eof", "tcp_connect", "tcp_exchange", "tcp_member_name", "tcp_roundtrip",
    "udp_exchange", "udp_socket",
    "PROJECT_ID", "accelerator_arn", "config", "listener", "listener_arn", "member", "pool", "port_ranges",
    "single_pool_config",
    "Daemon", "DaemonError", "NotifyListener", "UnixHTTPConnection", "dump_config", "run_check_config",
    "Iperf3Error", "Iperf3Server", "iperf3_client", "iperf3_path", "iperf3_server", "received_bps", "sent_bytes",
    "Sample", "metric_sum", "parse_metrics", "promtool_check", "promtool_path",
    "REPO_ROOT", "default_config", "flowgatectl_bin", "flowgated_bin",
    "ephemeral_range", "free_port", "free_port_range", "port_is_free", "refused_port", "release_ports",
    "tcp_listening_ports", "udp_bound_ports", "wait_port_state",
]
