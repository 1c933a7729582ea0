#!/usr/bin/env python3
"""Instructions per forwarded MiB (TCP) and per forwarded UDP datagram, counted
by valgrind's callgrind in the proxy process (instruction counts are stable on
this shared machine, unlike timings; `perf stat` is not available here).

Phases, each ended by `callgrind_control --dump` (which also zeroes the counters):
  idle: the proxy sits idle IDLE_SECONDS (timers, housekeeping) -> Ir per second
  tcp:  TCP_MIB MiB through one TCP connection to a sink backend
  conn: TCP_CONNECTIONS short connections, one after another, 16 bytes each
  udp:  UDP_DATAGRAMS 64-byte datagrams, paced so none is dropped, to a sink
  hka:  HTTP_REQUESTS GET requests, one after another on one keep-alive
        connection, through the HTTP pool (service `httppool`: parsed, balanced,
        X-Forwarded-* added, a persistence cookie inserted) to a small HTTP backend
  hcps: HTTP_CONNECTIONS requests through the same pool, each on its own
        connection with `Connection: close`
Each traffic phase is charged its Ir minus the idle rate times its wall time.
Calls to ARC, allocation and lock functions are counted from the call graph,
so per-packet retain/release/malloc shows as calls per datagram or per MiB.
Run through bench/callgrind/run.sh.
"""
import datetime
import glob
import os
import re
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from procs import ProcessRegistry  # noqa: E402
from proxies import ProxyStartError, make_proxies  # noqa: E402
from services import PortPlan  # noqa: E402

WATCHED_CALLS = ["swift_retain", "swift_release", "swift_retain_n", "swift_release_n", "swift_allocObject",
                 "swift_bridgeObjectRetain", "swift_bridgeObjectRelease", "swift_unknownObjectRetain",
                 "swift_unknownObjectRelease", "swift_beginAccess", "swift_endAccess", "malloc", "free",
                 "calloc", "realloc", "pthread_mutex_lock", "swift_once", "swift_dynamicCast"]
CHUNK = 64 * 1024
DATAGRAM = b"x" * 64
UDP_BATCH = 50


def log(message):
    print(f"callgrind: {message}", file=sys.stderr, flush=True)


class Sinks:
    """A TCP sink and a UDP sink on the same backend port, counting what arrives."""

    def __init__(self, port):
        self.tcp_bytes = 0
        self.tcp_closed = 0
        self.udp_datagrams = 0
        self.stopping = False
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", port))
        self.tcp.listen(64)
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.udp.bind(("127.0.0.1", port))
        self.udp.settimeout(0.2)
        self.threads = [threading.Thread(target=self._tcp_loop, daemon=True),
                        threading.Thread(target=self._udp_loop, daemon=True)]
        for thread in self.threads:
            thread.start()

    def _tcp_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn):
        conn.settimeout(60)
        with conn:
            while True:
                try:
                    data = conn.recv(1 << 20)
                except OSError:
                    return
                if not data:
                    break
                self.tcp_bytes += len(data)
        self.tcp_closed += 1

    def _udp_loop(self):
        while not self.stopping:
            try:
                self.udp.recv(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.udp_datagrams += 1

    def close(self):
        self.stopping = True
        for thread in self.threads:
            thread.join(timeout=2)
        self.tcp.close()
        self.udp.close()


RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


class HTTPBackend:
    """A keep-alive HTTP/1.1 backend answering every GET with a 3-byte body
    (the shape of the nginx backend of bench/run.sh's hka/hcps), counting requests."""

    def __init__(self, port):
        self.requests = 0
        self.stopping = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(60)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = b""
        with conn:
            while True:
                while b"\r\n\r\n" in data:
                    head, data = data.split(b"\r\n\r\n", 1)
                    self.requests += 1
                    conn.sendall(RESPONSE)
                    if b"connection: close" in head.lower():
                        return
                try:
                    piece = conn.recv(65536)
                except OSError:
                    return
                if not piece:
                    return
                data += piece

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2)
        self.sock.close()


def http_requests(port, count, keepalive):
    """`count` GETs, one after another, each answered before the next is sent:
    on one keep-alive connection, or each on its own connection."""
    def read_response(f):
        status = f.readline()
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"HTTP: unexpected status line {status!r}")
        length = 0
        while (line := f.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        f.read(length)

    if keepalive:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            f = sock.makefile("rb")
            for _ in range(count):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: callgrind\r\nAccept: */*\r\n\r\n")
                read_response(f)
        return count
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            f = sock.makefile("rb")
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: callgrind\r\nAccept: */*\r\n"
                         b"Connection: close\r\n\r\n")
            read_response(f)
    return count


def wait_until(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def send_tcp(port, sinks, mebibytes):
    total = mebibytes << 20
    start = sinks.tcp_bytes
    chunk = b"\x5a" * CHUNK
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sent = 0
        while sent < total:
            sock.sendall(chunk)
            sent += CHUNK
        sock.shutdown(socket.SHUT_WR)
        if not wait_until(lambda: sinks.tcp_bytes - start >= total, 300):
            raise RuntimeError(f"TCP: only {sinks.tcp_bytes - start} of {total} bytes reached the sink")


def open_close_tcp(port, sinks, count):
    """`count` short connections one after another, each carrying 16 bytes."""
    start = sinks.tcp_closed
    for index in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"0123456789abcdef")
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(30)
            while sock.recv(4096):
                pass  # the proxy closes once the sink has closed
        if not wait_until(lambda: sinks.tcp_closed - start > index, 30):
            raise RuntimeError(f"TCP connections: connection {index} never reached the sink")
    return sinks.tcp_closed - start


def send_udp(port, sinks, count):
    """Paced in batches: each batch must arrive before the next is sent, so the
    count is of forwarded datagrams, not of drops."""
    start = sinks.udp_datagrams
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sent = 0
        while sent < count:
            batch = min(UDP_BATCH, count - sent)
            for _ in range(batch):
                sock.send(DATAGRAM)
            sent += batch
            wait_until(lambda: sinks.udp_datagrams - start >= sent, 10)
        wait_until(lambda: sinks.udp_datagrams - start >= count, 10)
    return sinks.udp_datagrams - start


def dump(registry, pid, label, out_dir, before):
    code, out = registry.run("callgrind_control", ["callgrind_control", "--dump=" + label, str(pid)], 120)
    if code != 0:
        raise RuntimeError(f"callgrind_control --dump failed: {out.strip()}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        files = set(glob.glob(os.path.join(out_dir, "callgrind.out.*"))) - before
        for path in files:
            if os.path.getsize(path) > 0 and _complete(path):
                return path
        time.sleep(0.2)
    raise RuntimeError(f"no callgrind dump file for {label}")


def _complete(path):
    with open(path, errors="replace") as f:
        text = f.read()
    return "totals:" in text or "summary:" in text


def total_ir(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def parse_profile(path):
    """Self Ir per function and calls per callee name, from a callgrind file.

    A cost line right after `calls=` is the inclusive cost of that call and
    belongs to the callee; every other cost line is self cost of the current
    `fn=`. Names are compressed: `fn=(id) name` the first time, `fn=(id)` after.
    """
    names, self_ir, calls = {}, {}, {}
    function = callee = None
    after_calls = False
    pattern = re.compile(r"^(c?fn)=\((\d+)\)(?: (.*))?$")
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            match = pattern.match(line)
            if match:
                kind, ident, name = match.groups()
                if name is not None:
                    names[ident] = name
                if kind == "fn":
                    function = names.get(ident, ident)
                else:
                    callee = names.get(ident, ident)
                after_calls = False
                continue
            if line.startswith("calls="):
                if callee is not None:
                    calls[callee] = calls.get(callee, 0) + int(line[6:].split()[0])
                after_calls = True
                continue
            if line[0].isdigit() or line[0] in "+-*":
                if after_calls:
                    after_calls = False
                    continue
                fields = line.split()
                if function is not None and len(fields) >= 2:
                    self_ir[function] = self_ir.get(function, 0) + int(fields[1])
    return self_ir, calls


def demangle(names):
    try:
        out = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(names),
                             capture_output=True, text=True, timeout=60).stdout.splitlines()
        if len(out) == len(names):
            return out
    except (OSError, subprocess.SubprocessError):
        pass
    return names


def top_functions(self_ir, total, count=15):
    ranked = sorted(self_ir.items(), key=lambda item: -item[1])[:count]
    names = demangle([name for name, _ in ranked])
    return [f"{ir:>12,} {100 * ir / max(total, 1):5.1f}%  {name[:140]}" for (_, ir), name in zip(ranked, names)]


def main():
    target = os.environ.get("TARGET", "flowgated")
    mebibytes = int(os.environ.get("TCP_MIB", "64"))
    datagrams = int(os.environ.get("UDP_DATAGRAMS", "20000"))
    idle_seconds = float(os.environ.get("IDLE_SECONDS", "3"))
    connections = int(os.environ.get("TCP_CONNECTIONS", "500"))
    http_keepalive = int(os.environ.get("HTTP_REQUESTS", "2000"))
    http_connections = int(os.environ.get("HTTP_CONNECTIONS", "500"))
    phases_wanted = set(os.environ.get("PHASES", "tcp,conn,udp,hka,hcps").split(","))
    workdir = os.environ["CALLGRIND_WORKDIR"]
    registry = ProcessRegistry(os.environ["CALLGRIND_PID_FILE"], pin=False)
    ports = PortPlan(int(os.environ.get("PORT_BASE", "25000")))
    proxy = make_proxies([target], ports, registry, os.environ.get("FLOWGATED", ""),
                         os.environ.get("FLOWGATED_UNAVAILABLE", ""))[target]
    out_dir = os.path.join(workdir, "callgrind")
    os.makedirs(out_dir, exist_ok=True)
    proxy.wrapper = ["valgrind", "--tool=callgrind", "--dump-instr=no",
                     f"--callgrind-out-file={out_dir}/callgrind.out.%p"]
    proxy.ready_seconds = 180
    try:
        sinks = Sinks(ports.backend("iperf"))
    except OSError as error:
        raise SystemExit(f"callgrind: backend port {ports.backend('iperf')}: {error}; "
                         "another run may be using it: set PORT_BASE")
    http_backend = HTTPBackend(ports.backend("http"))
    phases = {}
    try:
        proxy.start(os.path.join(workdir, target), cpu=None)
        pid = proxy.proc.pid
        # Zero the start-up cost, then measure idle.
        code, out = registry.run("callgrind_control", ["callgrind_control", "--zero", str(pid)], 120)
        if code != 0:
            raise RuntimeError(f"callgrind_control --zero failed: {out.strip()}")
        seen = set(glob.glob(os.path.join(out_dir, "callgrind.out.*")))
        began = time.monotonic()
        time.sleep(idle_seconds)
        path = dump(registry, pid, "idle", out_dir, seen)
        phases["idle"] = (path, time.monotonic() - began, None)
        seen.add(path)

        if "tcp" in phases_wanted:
            began = time.monotonic()
            send_tcp(proxy.port("iperf"), sinks, mebibytes)
            path = dump(registry, pid, "tcp", out_dir, seen)
            phases["tcp"] = (path, time.monotonic() - began, mebibytes)
            seen.add(path)

        if connections > 0 and "conn" in phases_wanted:
            began = time.monotonic()
            opened = open_close_tcp(proxy.port("iperf"), sinks, connections)
            path = dump(registry, pid, "conn", out_dir, seen)
            phases["conn"] = (path, time.monotonic() - began, opened)
            seen.add(path)

        if proxy.supports_udp() and datagrams > 0 and "udp" in phases_wanted:
            began = time.monotonic()
            forwarded = send_udp(proxy.port("iperf"), sinks, datagrams)
            path = dump(registry, pid, "udp", out_dir, seen)
            phases["udp"] = (path, time.monotonic() - began, forwarded)
            seen.add(path)

        for phase, count, keepalive in (("hka", http_keepalive, True), ("hcps", http_connections, False)):
            if count > 0 and phase in phases_wanted and proxy.supports_http_mode():
                began = time.monotonic()
                done = http_requests(proxy.port("httppool"), count, keepalive)
                path = dump(registry, pid, phase, out_dir, seen)
                phases[phase] = (path, time.monotonic() - began, done)
                seen.add(path)
    except (ProxyStartError, RuntimeError, OSError) as error:
        log(f"failed: {error}")
        raise SystemExit(1)
    finally:
        proxy.stop()
        sinks.close()
        http_backend.close()
        registry.stop_all()

    idle_path, idle_time, _ = phases["idle"]
    idle_rate = total_ir(idle_path) / idle_time
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commit = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    lines = [f"# callgrind instruction counts: {target}, {stamp}, commit {commit}",
             f"# TCP_MIB={mebibytes} TCP_CONNECTIONS={connections} UDP_DATAGRAMS={datagrams} "
             f"HTTP_REQUESTS={http_keepalive} HTTP_CONNECTIONS={http_connections} IDLE_SECONDS={idle_seconds:g}; "
             "Ir = instructions executed by the proxy process (all threads)",
             f"idle_ir_per_second {idle_rate:,.0f}"]
    details = []
    for phase, unit in (("tcp", "MiB"), ("conn", "connection"), ("udp", "datagram"), ("hka", "request"),
                        ("hcps", "request")):
        if phase not in phases:
            lines.append(f"{phase}_ir_per_{unit} n/a")
            continue
        path, elapsed, amount = phases[phase]
        if not amount:
            lines.append(f"{phase}_ir_per_{unit} n/a (nothing forwarded)")
            continue
        net = total_ir(path) - idle_rate * elapsed
        lines.append(f"{phase}_ir_per_{unit} {net / amount:,.0f}")
        if phase == "udp":
            lines.append(f"udp_forwarded {amount} of {datagrams}")
        self_ir, counts = parse_profile(path)
        watched = [(name, counts[name]) for name in WATCHED_CALLS if counts.get(name)]
        details.append(f"\n## {phase}: {amount} {unit}{'' if unit == 'MiB' else 's'}, "
                       f"{total_ir(path):,} Ir in {elapsed:.1f} s")
        details.append("calls per " + unit + ": " + (", ".join(
            f"{name} {calls / amount:,.2f}" for name, calls in watched) or "none of " + " ".join(WATCHED_CALLS)))
        details.append("top functions by self Ir:")
        details.extend("  " + row for row in top_functions(self_ir, total_ir(path)))
    text = "\n".join(lines + details) + "\n"
    if os.environ.get("UPDATE_BASELINE") == "1":
        with open(os.path.join(HERE, f"baseline{'' if target == 'flowgated' else '-' + target}.txt"), "w") as f:
            f.write(text)
        log("baseline updated")
    print(text, flush=True)


if __name__ == "__main__":
    main()
