"""Issue 11 item 4 (empty config): a 0-byte config file.

(a) `flowgated --config EMPTY --check-config`: exit code and output.
(b) A running daemon with one TCP listener gets its config file replaced by 0
    bytes and a SIGHUP: the listener's port listening before and after, the
    reload's log line, and whether a flow still goes through.

    python bench/security/empty_config.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import subprocess
import time

import common as c
from harness import TcpBackend, tcp_exchange


def main(args) -> None:
    d = None
    (data_port,) = c.ports(1)
    backend = TcpBackend("echo", mode="echo")
    c.at_exit(backend.stop)
    cfg = c.single_pool_config([data_port], [c.member(backend.port)], workers=1)
    d = c.daemon(args, cfg)
    empty = d.workdir / "empty.yaml"
    empty.write_bytes(b"")
    p = subprocess.run([args.flowgated, "--config", str(empty), "--check-config"], capture_output=True,
                       text=True, timeout=30)
    out = " | ".join(l for l in (p.stdout + p.stderr).splitlines() if l.strip())
    c.result("7a empty-check-config", exit=p.returncode, output=repr(out[:160]))

    before = data_port in c.tcp_listening_ports()
    flow_before = tcp_exchange(data_port, b"ping") == b"ping"
    d.write_config("")
    mark = d.sighup()
    ready = d.notify.wait_for(lambda m: "READY=1" in m.split("\n"), mark, 5.0, alive=lambda: d.running)
    time.sleep(0.5)
    after = data_port in c.tcp_listening_ports()
    try:
        flow_after = tcp_exchange(data_port, b"ping") == b"ping"
    except OSError as error:
        flow_after = type(error).__name__
    reload_lines = [l for l in d.stderr_text().splitlines() if "event=reload" in l]
    c.result("7b empty-sighup", listening_before=before, flow_before=flow_before, listening_after=after,
             flow_after=flow_after, ready_after_reload=ready is not None, daemon_alive=d.running,
             log=repr((reload_lines[-1] if reload_lines else "-")[:160]))


if __name__ == "__main__":
    c.run("7 empty-config", main, c.parse_args(__doc__, time_limit=60))
