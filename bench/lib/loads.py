"""The load tests: one function per test, each bounded in time, each returning
the figures it measured (a dict of row name -> value) or raising LoadError."""
import json
import re
import socket
import time

CLIENT_CPU = 0  # with PIN=1 the load tools run on CPU 0, the proxy on CPU 1
WRK_CONNECTIONS = 50
IDLE_CONNECTIONS = 2000
LATENCY_RATE = 10000
MIN_LATENCY_SAMPLES = 1000


class LoadError(Exception):
    pass


def _tail(text, lines=3):
    return " | ".join(text.strip().splitlines()[-lines:])


def _iperf(ctx, proxy, extra):
    server = ctx.backends.start_iperf_server()
    try:
        argv = ["iperf3", "-c", "127.0.0.1", "-p", str(proxy.port("iperf")), "-t", str(ctx.duration),
                "-J", "--connect-timeout", "3000"] + extra
        code, out = ctx.registry.run("iperf3-client", argv, ctx.duration + 20, cpu=CLIENT_CPU)
    finally:
        ctx.registry.stop(server, grace=1)
    try:
        result = json.loads(out[out.index("{"):])
    except ValueError:
        raise LoadError(f"iperf3 exit {code}: {_tail(out)}")
    if "error" in result:
        raise LoadError(f"iperf3: {result['error']}")
    return result["end"]


def tcp_one_stream(ctx, proxy):
    end = _iperf(ctx, proxy, [])
    return {"tcp1": end["sum_received"]["bits_per_second"] / 1e9}


def tcp_four_streams(ctx, proxy):
    end = _iperf(ctx, proxy, ["-P", "4"])
    return {"tcp4": end["sum_received"]["bits_per_second"] / 1e9}


def udp_datagrams(ctx, proxy):
    """64-byte datagrams at full speed: the rate the server received, and the loss
    (iperf3 counts loss from sequence-number gaps at the server)."""
    end = _iperf(ctx, proxy, ["-u", "-l", "64", "-b", "0"])
    received = end["sum_received"]
    datagrams = received["bytes"] / 64
    if datagrams <= 0 or received["seconds"] <= 0:
        raise LoadError("no datagram reached the server")
    return {"udp_rate": datagrams / received["seconds"] / 1e3, "udp_loss": end["sum"]["lost_percent"]}


def udp_datagrams_big_buffers(ctx, proxy):
    """The same with 4 MiB socket buffers at both iperf3 ends (`-w 4M`; the
    server takes the client's setting). With the default 208 KB a receiver
    holds about 1-2 ms of 64-byte datagrams, less than one scheduler slice
    when three processes share two cores, so loss measures the backend's
    socket buffer as much as the proxy (docs/architecture.md §15)."""
    end = _iperf(ctx, proxy, ["-u", "-l", "64", "-b", "0", "-w", "4M"])
    received = end["sum_received"]
    datagrams = received["bytes"] / 64
    if datagrams <= 0 or received["seconds"] <= 0:
        raise LoadError("no datagram reached the server")
    return {"udpw_rate": datagrams / received["seconds"] / 1e3, "udpw_loss": end["sum"]["lost_percent"]}


def _wrk(ctx, proxy, headers, service="http"):
    url = f"http://127.0.0.1:{proxy.port(service)}/"
    argv = ["wrk", "-t", "2", "-c", str(WRK_CONNECTIONS), "-d", f"{ctx.duration}s", "--timeout", "2s"] + headers + [url]
    code, out = ctx.registry.run("wrk", argv, ctx.duration + 15, cpu=CLIENT_CPU)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if code != 0 or not match:
        raise LoadError(f"wrk exit {code}: {_tail(out)}")
    rate = float(match.group(1))
    total = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = (sum(int(g) for g in errors.groups()) if errors else 0) + (int(non2xx.group(1)) if non2xx else 0)
    requests = int(total.group(1)) if total else 0
    if requests == 0 or failed > 0.01 * requests:
        raise LoadError(f"wrk: {failed} errors in {requests} requests: {_tail(out, 4)}")
    return rate


def new_connections(ctx, proxy):
    """One tiny request per TCP connection (`Connection: close`): connections per second."""
    return {"cps": _wrk(ctx, proxy, ["-H", "Connection: close"])}


def keepalive_requests(ctx, proxy):
    return {"rps": _wrk(ctx, proxy, [])}


def http_mode_keepalive_requests(ctx, proxy):
    """The `rps` load through the proxy's HTTP mode (service `httppool`): every
    request is parsed, balanced and gets a persistence cookie added."""
    return {"hka": _wrk(ctx, proxy, [], service="httppool")}


def http_mode_new_connections(ctx, proxy):
    """The `cps` load through the proxy's HTTP mode: one request per connection."""
    return {"hcps": _wrk(ctx, proxy, ["-H", "Connection: close"], service="httppool")}


def _sockperf(ctx, proxy, tcp):
    """Round-trip latency at a fixed pace of 10 k msg/s (sockperf ping-pong: each
    message waits for its reply, so a stall shows as latency, not as a queue)."""
    service = "sockperf_tcp" if tcp else "sockperf_udp"
    argv = ["sockperf", "ping-pong", "-i", "127.0.0.1", "-p", str(proxy.port(service)), "-t", str(ctx.duration),
            "--mps", str(LATENCY_RATE), "--full-rtt"] + (["--tcp"] if tcp else [])
    code, out = ctx.registry.run("sockperf-client", argv, ctx.duration + 15, cpu=CLIENT_CPU)
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    p50 = re.search(r"percentile 50\.000 =\s+([\d.]+)", out)
    p99 = re.search(r"percentile 99\.000 =\s+([\d.]+)", out)
    if not (p50 and p99):
        raise LoadError(f"sockperf exit {code}: {_tail(out)}")
    observations = re.search(r"Total (\d+) observations", out)
    if observations and int(observations.group(1)) < MIN_LATENCY_SAMPLES:
        raise LoadError(f"sockperf: only {observations.group(1)} round trips")
    prefix = "lat" if tcp else "ulat"
    return {f"{prefix}_p50": float(p50.group(1)), f"{prefix}_p99": float(p99.group(1))}


def tcp_latency(ctx, proxy):
    return _sockperf(ctx, proxy, tcp=True)


def udp_latency(ctx, proxy):
    return _sockperf(ctx, proxy, tcp=False)


def idle_connection_memory(ctx, proxy, rss_kib):
    """RSS growth per idle TCP connection: 2,000 client connections through the
    proxy, each with its upstream connection accepted and held by the backend."""
    hold = ctx.backends.hold
    hold.release_all()
    time.sleep(0.5)
    before = rss_kib()
    clients = []
    deadline = time.monotonic() + 30
    try:
        for _ in range(IDLE_CONNECTIONS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            clients.append(sock)
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.connect(("127.0.0.1", proxy.port("hold")))
        while hold.count() < IDLE_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.05)
        held = hold.count()
        if held < IDLE_CONNECTIONS:
            raise LoadError(f"only {held} of {IDLE_CONNECTIONS} connections reached the backend")
        time.sleep(1.0)  # let lazily allocated per-connection state settle
        after = rss_kib()
    except OSError as error:
        raise LoadError(f"opening idle connections: {error}")
    finally:
        for sock in clients:
            sock.close()
        hold.release_all()
    return {"idle_conn": (after - before) / IDLE_CONNECTIONS, "rss_idle": after / 1024}


# test name -> (function, needs UDP)
TESTS = {
    "tcp1": (tcp_one_stream, False),
    "tcp4": (tcp_four_streams, False),
    "udp": (udp_datagrams, True),
    "udpw": (udp_datagrams_big_buffers, True),
    "cps": (new_connections, False),
    "rps": (keepalive_requests, False),
    "hka": (http_mode_keepalive_requests, False),
    "hcps": (http_mode_new_connections, False),
    "lat": (tcp_latency, False),
    "ulat": (udp_latency, True),
}
# The HTTP-pool tests run last in a round: each proxy runs once per round, and
# the heap an HTTP test leaves behind (freed but kept by the allocator) would
# otherwise be reused by the idle connections of `mem` and hide their cost
# (measured: flowgated 0.10 KiB per connection after hka/hcps, 0.87 before).
ALL_TESTS = [t for t in TESTS if t not in ("hka", "hcps")] + ["mem"] + [t for t in TESTS if t in ("hka", "hcps")]
HTTP_MODE_TESTS = {"hka", "hcps"}  # n/a for a proxy whose supports_http_mode() is False
