"""Black-box tests of HTTP pools (issue 13): a TCP listener whose pool has
`protocol: HTTP` parses HTTP/1.1, balances each request on its own, adds
X-Forwarded-*, answers errors in HTTP, and keeps sessions with HTTP_COOKIE
and APP_COOKIE. Real clients (`requests.Session` with its cookie jar, `curl`,
raw sockets for the refusals) and real servers (Python http.server, one per
member, answering with its name).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from harness.configs import config, listener, pool
from harness.metrics import metric_sum, parse_metrics
from harness.selection import ACCELERATOR, POOL_ID, fixed_members

CHUNK = bytes(range(256)) * 256   # 64 KiB pattern for large bodies


def pattern(n: int) -> bytes:
    whole, rest = divmod(n, len(CHUNK))
    return CHUNK * whole + CHUNK[:rest]


class HTTPBackend:
    """A member: a threaded HTTP/1.1 server that answers with its name and
    records every request it receives (method, path, headers)."""

    def __init__(self, name: str):
        self.name = name
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.sessions = 0
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _record(self):
                with backend.lock:
                    backend.seen.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))

            def _reply(self, body: bytes, status: int = 200, extra: dict[str, str] | None = None):
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _read_body(self) -> tuple[int, str]:
                """The body's length and SHA-256, hashed as it arrives (bodies reach 256 MiB)."""
                digest, total = hashlib.sha256(), 0
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b""):
                                pass
                            return total, digest.hexdigest()
                        while size > 0:
                            piece = self.rfile.read(min(size, 1 << 20))
                            if not piece:
                                raise ConnectionError("body ended early")
                            digest.update(piece)
                            total += len(piece)
                            size -= len(piece)
                        self.rfile.readline()
                left = int(self.headers.get("Content-Length", "0"))
                while left > 0:
                    piece = self.rfile.read(min(left, 1 << 20))
                    if not piece:
                        raise ConnectionError("body ended early")
                    digest.update(piece)
                    total += len(piece)
                    left -= len(piece)
                return total, digest.hexdigest()

            def do_GET(self):
                self._record()
                if self.path == "/login":
                    with backend.lock:
                        backend.sessions += 1
                        sid = f"{backend.name}-{backend.sessions}"
                    self._reply(backend.name.encode(), extra={"Set-Cookie": f"JSESSIONID={sid}; Path=/"})
                elif self.path.startswith("/download-chunked/"):
                    n = int(self.path.rsplit("/", 1)[1])
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    sent = 0
                    while sent < n:
                        piece = CHUNK[:min(len(CHUNK), n - sent)]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        sent += len(piece)
                    self.wfile.write(b"0\r\n\r\n")
                elif self.path.startswith("/download/"):
                    n = int(self.path.rsplit("/", 1)[1])
                    self.send_response(200)
                    self.send_header("Content-Length", str(n))
                    self.end_headers()
                    sent = 0
                    while sent < n:
                        piece = CHUNK[:min(len(CHUNK), n - sent)]
                        self.wfile.write(piece)
                        sent += len(piece)
                elif self.path == "/headers":
                    body = json.dumps({"name": backend.name, "headers": {k.lower(): v for k, v in self.headers.items()}})
                    self._reply(body.encode(), extra={"Content-Type": "application/json"})
                else:
                    self._reply(backend.name.encode())

            do_HEAD = do_GET

            def do_POST(self):
                self._record()
                length, digest = self._read_body()
                xff = self.headers.get("X-Forwarded-For", "-")
                self._reply(f"{backend.name} {length} {digest} {xff}".encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        with self.lock:
            return [p for _, p, _ in self.seen]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_backends():
    made: list[HTTPBackend] = []

    def make(*names: str) -> list[HTTPBackend]:
        out = [HTTPBackend(n) for n in names]
        made.extend(out)
        return out
    yield make
    for b in made:
        b.close()


def http_config(ports, backends, **pool_extra):
    p = pool(fixed_members(backends), protocol="HTTP", lb_algorithm="ROUND_ROBIN", pool_id=POOL_ID,
             name="http", **pool_extra)
    l = listener(ports, POOL_ID, protocol="TCP", accelerator=ACCELERATOR,
                 arn=f"{ACCELERATOR}/listener/5e1ec711")
    return config([l], [p], workers=2, accelerator=ACCELERATOR)


def start(daemon, port_range, backends, **pool_extra):
    ports = port_range(1, proto=("tcp",))
    d = daemon(http_config(ports, backends, **pool_extra))
    return d, ports[0]


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends `data`, half-closes, reads until the daemon closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            try:
                piece = s.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            out += piece
        return out


def metrics(d) -> list:
    status, _, body = d.request("GET", "/metrics")
    assert status == 200
    return parse_metrics(body.decode() if isinstance(body, bytes) else body)


# MARK: stage 1: HTTP mode


def test_each_keepalive_request_is_balanced_and_forwarded_headers_added(daemon, port_range, http_backends):
    """ROUND_ROBIN over a, b, c: one keep-alive Session (one TCP connection)
    sees a, b, c, a, ... (a TCP relay would pin the connection on one member),
    and each backend sees X-Forwarded-For = the client's address,
    X-Forwarded-Proto = http, X-Forwarded-Port = the listener port, and the
    client's Host unchanged."""
    backends = http_backends("a", "b", "c")
    d, port = start(daemon, port_range, backends)
    with requests.Session() as s:
        names = [s.get(f"http://127.0.0.1:{port}/", timeout=5).text for _ in range(6)]
        assert sorted(names[:3]) == ["a", "b", "c"] and names[3:] == names[:3], names
        r = s.get(f"http://127.0.0.1:{port}/headers", headers={"Host": "example.test", "X-Forwarded-For": "10.9.8.7"},
                  timeout=5)
    h = r.json()["headers"]
    assert h["x-forwarded-for"] == "10.9.8.7, 127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-port"] == str(port)
    assert h["host"] == "example.test"
    samples = metrics(d)
    assert metric_sum(samples, "flowgate_http_responses_total", pool=POOL_ID, status="200") >= 7
    assert metric_sum(samples, "flowgate_http_requests_total", pool=POOL_ID) >= 7


def test_pipelined_requests_are_answered_in_order(daemon, port_range, http_backends):
    """Three requests in one send: three responses, in order, from members picked one by one."""
    backends = http_backends("a", "b")
    _, port = start(daemon, port_range, backends)
    req = b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\nGET /p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw_exchange(port, req)
    assert out.count(b"HTTP/1.1 200") == 3, out
    bodies = [part.rsplit(b"\r\n\r\n", 1)[-1][:1] for part in out.split(b"HTTP/1.1 200")[1:]]
    assert bodies == [b"a", b"b", b"a"], out
    assert backends[0].paths() == ["/p1", "/p3"] and backends[1].paths() == ["/p2"]


BIG = 256 * 1024 * 1024


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """BIG bytes of the pattern on disk, and their SHA-256 (made once for the module)."""
    path = tmp_path_factory.mktemp("big") / "up.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        for _ in range(BIG // len(CHUNK)):
            f.write(CHUNK)
            digest.update(CHUNK)
    return path, digest.hexdigest()


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_256_mib_upload_keeps_its_bytes(daemon, port_range, http_backends, big_file, framing):
    """A 256 MiB upload with curl reaches the member with the same SHA-256:
    chunked (Transfer-Encoding: chunked), or Content-Length (curl sends
    `Expect: 100-continue` and waits for the member's 100)."""
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    path, digest = big_file
    backends = http_backends("a")
    _, port = start(daemon, port_range, backends)
    header = "Transfer-Encoding: chunked" if framing == "chunked" else "Expect: 100-continue"
    r = subprocess.run(["curl", "-sS", "--fail", "-H", header, "--data-binary", f"@{path}",
                        f"http://127.0.0.1:{port}/upload"], capture_output=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["a", str(BIG), digest, "127.0.0.1"]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_256_mib_download_keeps_its_bytes(daemon, port_range, http_backends, big_file, tmp_path, framing):
    """A 256 MiB response, Content-Length or chunked, reaches curl with the same SHA-256."""
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    _, digest = big_file
    backends = http_backends("a")
    _, port = start(daemon, port_range, backends)
    down = tmp_path / "down.bin"
    route = "download-chunked" if framing == "chunked" else "download"
    r = subprocess.run(["curl", "-sS", "--fail", "-o", str(down), f"http://127.0.0.1:{port}/{route}/{BIG}"],
                       capture_output=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert down.stat().st_size == BIG
    assert file_sha256(down) == digest
    down.unlink()


def test_head_and_content_length_upload_through_requests(daemon, port_range, http_backends):
    """A HEAD response (Content-Length, no body) does not desynchronise the
    keep-alive connection; a POST with Content-Length arrives whole."""
    backends = http_backends("a")
    _, port = start(daemon, port_range, backends)
    body = pattern(3 * 1024 * 1024 + 7)
    with requests.Session() as s:
        assert s.head(f"http://127.0.0.1:{port}/", timeout=5).headers["Content-Length"] == "1"
        r = s.post(f"http://127.0.0.1:{port}/upload", data=body, timeout=30)
        assert r.text.split() == ["a", str(len(body)), hashlib.sha256(body).hexdigest(), "127.0.0.1"]
        assert s.get(f"http://127.0.0.1:{port}/", timeout=5).text == "a"


# MARK: stage 2: errors as HTTP answers


def test_smuggling_vector_cl_te_gets_400_and_is_never_forwarded(daemon, port_range, http_backends):
    backends = http_backends("a")
    d, port = start(daemon, port_range, backends)
    out = raw_exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out
    assert out.count(b"HTTP/1.1") == 1
    assert backends[0].paths() == []
    assert metric_sum(metrics(d), "flowgate_http_responses_total", pool=POOL_ID, status="400") == 1


SMUGGLING = {
    "CL.CL conflicting": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n",
    "TE.CL chunked not last": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 4\r\n\r\n",
    "TE obfuscated: space before colon": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "TE obfuscated: line folding": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n",
    "TE in HTTP/1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bare LF": b"GET / HTTP/1.1\nHost: x\n\n",
    "two Host fields": b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
}


@pytest.mark.parametrize("vector", sorted(SMUGGLING))
def test_smuggling_vectors_in_the_head_get_400_and_reach_no_member(daemon, port_range, http_backends, vector):
    backends = http_backends("a")
    _, port = start(daemon, port_range, backends)
    out = raw_exchange(port, SMUGGLING[vector] + b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400 "), out
    assert out.count(b"HTTP/1.1") == 1
    assert backends[0].paths() == []


def test_oversized_heads_get_414_and_431(daemon, port_range, http_backends):
    backends = http_backends("a")
    _, port = start(daemon, port_range, backends)
    assert raw_exchange(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 414 ")
    assert raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n").startswith(b"HTTP/1.1 431 ")
    assert backends[0].paths() == []


def test_no_eligible_member_is_503_and_refused_members_502(daemon, port_range, http_backends):
    backends = http_backends("a")
    ports = port_range(1, proto=("tcp",))
    # A member that listens nowhere: every connect is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    dead = type("Dead", (), {"port": dead_port, "name": "dead"})()
    d = daemon(http_config(ports, [dead]))
    r = requests.get(f"http://127.0.0.1:{ports[0]}/", timeout=10)
    assert r.status_code == 502, r.text
    d.stop()
    ports = port_range(1, proto=("tcp",))
    cfg = http_config(ports, backends)
    cfg["pools"][0]["members"][0]["weight"] = 0
    daemon(cfg)
    r = requests.get(f"http://127.0.0.1:{ports[0]}/", timeout=10)
    assert r.status_code == 503, r.text
    assert backends[0].paths() == []


def test_malformed_response_head_is_502(daemon, port_range):
    """A member that answers garbage: the client gets 502, not the garbage."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx")
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    try:
        bad = type("Bad", (), {"port": srv.getsockname()[1], "name": "bad"})()
        ports = port_range(1, proto=("tcp",))
        daemon(http_config(ports, [bad]))
        r = requests.get(f"http://127.0.0.1:{ports[0]}/", timeout=10)
        assert r.status_code == 502
    finally:
        srv.close()


# MARK: stage 3: cookie persistence

COOKIE = "FLOWGATE_SRV"


def test_http_cookie_keeps_a_session_on_one_member_while_fresh_sessions_spread(daemon, port_range, http_backends):
    """HTTP_COOKIE, 60 minutes, over ROUND_ROBIN a, b, c: a requests.Session
    gets Flowgate's cookie on its first response (Path=/, HttpOnly,
    Max-Age=3600, a value that reveals no address) and its next 49 requests
    all reach that member, although round robin alone would rotate them;
    three fresh sessions land on three different members."""
    backends = http_backends("a", "b", "c")
    d, port = start(daemon, port_range, backends, session_persistence={"type": "HTTP_COOKIE", "persistence_timeout": 60})
    url = f"http://127.0.0.1:{port}/"
    with requests.Session() as s:
        first = s.get(url, timeout=5)
        set_cookie = first.headers["Set-Cookie"]
        assert set_cookie.startswith(f"{COOKIE}=") and set_cookie.endswith("; Path=/; HttpOnly; Max-Age=3600"), set_cookie
        value = s.cookies[COOKIE]
        assert len(value) == 16 and "127" not in value and str(backends[0].port) not in value
        names = [first.text] + [s.get(url, timeout=5).text for _ in range(49)]
        assert names == [first.text] * 50, Counter(names)
        # A request that already names its member gets no new cookie.
        assert "Set-Cookie" not in s.get(url, timeout=5).headers
    fresh = []
    for _ in range(3):
        with requests.Session() as s:
            fresh.append(s.get(url, timeout=5).text)
    assert len(set(fresh)) == 3, fresh
    samples = metrics(d)
    assert metric_sum(samples, "flowgate_http_cookie_requests_total", pool=POOL_ID, outcome="hit") >= 49


def test_http_cookie_tampered_value_falls_back_and_gets_a_fresh_cookie(daemon, port_range, http_backends):
    backends = http_backends("a", "b")
    d, port = start(daemon, port_range, backends, session_persistence={"type": "HTTP_COOKIE", "persistence_timeout": 1})
    r = requests.get(f"http://127.0.0.1:{port}/", cookies={COOKIE: "0123456789abcdef"}, timeout=5)
    assert r.text in ("a", "b")
    assert r.headers["Set-Cookie"].endswith("; Path=/; HttpOnly; Max-Age=60")
    fresh = r.cookies[COOKIE]
    assert fresh != "0123456789abcdef"
    # The fresh cookie holds: 10 more requests reach the same member.
    assert {requests.get(f"http://127.0.0.1:{port}/", cookies={COOKIE: fresh}, timeout=5).text for _ in range(10)} == {r.text}
    assert metric_sum(metrics(d), "flowgate_http_cookie_requests_total", pool=POOL_ID, outcome="fallback") == 1


def test_one_keepalive_connection_with_different_cookies_reaches_different_members(daemon, port_range, http_backends):
    """Each request is balanced on its own: on one TCP connection, requests
    carrying the cookies of c, c, a, b, b, a reach exactly those members (round
    robin alone would give another sequence)."""
    backends = http_backends("a", "b", "c")
    _, port = start(daemon, port_range, backends, session_persistence={"type": "HTTP_COOKIE", "persistence_timeout": 60})
    values = {}
    for _ in range(3):
        r = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        values[r.text] = r.cookies[COOKIE]
    assert set(values) == {"a", "b", "c"}
    order = ["c", "c", "a", "b", "b", "a"]
    before = {b.name: len(b.paths()) for b in backends}
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        f = sock.makefile("rb")
        got = []
        for name in order:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: x\r\nCookie: other=1; {COOKIE}={values[name]}\r\n\r\n".encode())
            status = f.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            length = 0
            while (line := f.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            got.append(f.read(length).decode())
    assert got == order
    assert {b.name: len(b.paths()) - before[b.name] for b in backends} == Counter(order)


def test_app_cookie_learns_jsessionid_and_keeps_the_session(daemon, port_range, http_backends):
    """APP_COOKIE JSESSIONID over ROUND_ROBIN a, b, c: the member that set
    JSESSIONID gets every later request carrying it (20 of them), and
    Flowgate adds no cookie of its own."""
    backends = http_backends("a", "b", "c")
    d, port = start(daemon, port_range, backends,
                    session_persistence={"type": "APP_COOKIE", "cookie_name": "JSESSIONID", "persistence_timeout": 60})
    url = f"http://127.0.0.1:{port}"
    owners = []
    for _ in range(3):
        with requests.Session() as s:
            login = s.get(f"{url}/login", timeout=5)
            assert login.headers["Set-Cookie"].startswith(f"JSESSIONID={login.text}-"), login.headers
            assert COOKIE not in login.headers["Set-Cookie"]
            names = [s.get(f"{url}/", timeout=5).text for _ in range(20)]
            assert names == [login.text] * 20, Counter(names)
            owners.append(login.text)
    assert len(set(owners)) == 3, owners
    # An unknown session id falls back to the algorithm.
    spread = {requests.get(f"{url}/", cookies={"JSESSIONID": f"unknown-{i}"}, timeout=5).text for i in range(6)}
    assert len(spread) == 3


def test_upgrade_101_turns_the_connection_into_a_relay_both_ways(daemon, port_range):
    """`Connection: upgrade` answered by 101: from then on bytes pass both
    ways unparsed (a member that speaks first, then echoes), and the
    member's half-close reaches the client."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        try:
            c, _ = srv.accept()
        except OSError:
            return
        with c:
            head = b""
            while b"\r\n\r\n" not in head:
                head += c.recv(4096)
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello from member\n")
            while True:
                data = c.recv(65536)
                if not data or data == b"bye":
                    break
                c.sendall(data.upper())
    threading.Thread(target=serve, daemon=True).start()
    try:
        ws = type("WS", (), {"port": srv.getsockname()[1], "name": "ws"})()
        ports = port_range(1, proto=("tcp",))
        daemon(http_config(ports, [ws]))
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as s:
            s.sendall(b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            f = s.makefile("rb")
            assert f.readline().startswith(b"HTTP/1.1 101 ")
            while f.readline() != b"\r\n":
                pass
            assert f.readline() == b"hello from member\n"
            for word in (b"not http at all\r\n\r\n", b"GET / HTTP/1.1\r\n"):
                s.sendall(word)
                assert f.read(len(word)) == word.upper()
            s.sendall(b"bye")
            assert f.read() == b""
    finally:
        srv.close()


def test_member_that_never_answers_the_connect_is_504(daemon, port_range):
    """A member whose accept queue is full drops SYNs, so every connect times
    out (tuning.connect_timeout 1 s): the client gets 504, not a reset."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(srv.getsockname())
            fillers.append(c)
        silent = type("Silent", (), {"port": srv.getsockname()[1], "name": "silent"})()
        ports = port_range(1, proto=("tcp",))
        cfg = http_config(ports, [silent])
        cfg["tuning"] = {"connect_timeout": 1}
        d = daemon(cfg)
        r = requests.get(f"http://127.0.0.1:{ports[0]}/", timeout=15)
        assert r.status_code == 504, r.text
        assert metric_sum(metrics(d), "flowgate_http_responses_total", pool=POOL_ID, status="504") == 1
    finally:
        for c in fillers:
            c.close()
        srv.close()


def test_cookie_naming_a_removed_member_falls_back_on_the_same_keepalive_connection(daemon, port_range, http_backends):
    """HTTP_COOKIE over a, b: a Session holds b's cookie on one keep-alive
    connection; a config reload removes b. The next request on that same
    connection (each request takes the latest snapshot) goes to a and gets a
    fresh cookie naming a, which then holds."""
    backends = http_backends("a", "b")
    sp = {"type": "HTTP_COOKIE", "persistence_timeout": 60}
    d, port = start(daemon, port_range, backends, session_persistence=sp)
    url = f"http://127.0.0.1:{port}/"
    with requests.Session() as s:
        names = {s.get(url, timeout=5).text}
        while names != {"b"}:          # round robin: the second fresh session lands on b
            s.cookies.clear()
            names = {s.get(url, timeout=5).text}
        old = s.cookies[COOKIE]
        assert [s.get(url, timeout=5).text for _ in range(5)] == ["b"] * 5
        cfg = dict(d.config)
        cfg["pools"] = [dict(cfg["pools"][0], members=[cfg["pools"][0]["members"][0]])]
        d.write_config(cfg)
        d.sighup(wait=True)
        r = s.get(url, timeout=5)
        assert r.text == "a"
        assert s.cookies[COOKIE] != old
        assert [s.get(url, timeout=5).text for _ in range(5)] == ["a"] * 5


def test_shutdown_closes_idle_keepalive_connections_at_once(daemon, port_range, http_backends):
    """SIGTERM drains: an HTTP keep-alive connection between requests holds no
    work, so it is closed at once and the daemon exits well before
    tuning.drain_timeout (30 s here) instead of waiting for the client."""
    import time
    backends = http_backends("a")
    ports = port_range(1, proto=("tcp",))
    cfg = http_config(ports, backends)
    cfg["tuning"] = {"drain_timeout": 30}
    d = daemon(cfg)
    with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        f = s.makefile("rb")
        assert f.readline().startswith(b"HTTP/1.1 200")
        while f.readline() != b"\r\n":
            pass
        assert f.read(1) == b"a"
        started = time.monotonic()
        assert d.terminate(timeout=40) == 0
        assert time.monotonic() - started < 10
        assert f.read() == b""


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk not installed")
def test_switching_persistence_while_wrk_runs_cuts_nothing(daemon, port_range, http_backends):
    """wrk keeps 8 keep-alive connections busy while the pool is switched
    ROUND_ROBIN → HTTP_COOKIE → APP_COOKIE → none by config reloads: no
    socket error, no non-2xx response (each request takes the latest plan)."""
    backends = http_backends("a", "b", "c")
    d, port = start(daemon, port_range, backends)
    wrk = subprocess.Popen(["wrk", "-t2", "-c8", "-d6s", f"http://127.0.0.1:{port}/"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for sp in ({"type": "HTTP_COOKIE", "persistence_timeout": 5},
                   {"type": "APP_COOKIE", "cookie_name": "JSESSIONID", "persistence_timeout": 5}, None):
            import time
            time.sleep(1)
            cfg = dict(d.config)
            p = dict(cfg["pools"][0])
            if sp is None:
                p.pop("session_persistence", None)
            else:
                p["session_persistence"] = sp
            cfg["pools"] = [p]
            d.write_config(cfg)
            d.sighup(wait=True)
        out, _ = wrk.communicate(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
    assert "requests in" in out, out
    assert int(out.split(" requests in")[0].split()[-1]) > 100, out
    assert "Socket errors" not in out and "Non-2xx" not in out, out


# MARK: chunked framing checked before the head is forwarded

CHUNK_ERRORS = {
    # 16 hex digits: more than an Int can hold once shifted; refused at the 16th digit.
    "chunk-size overflow": (b"10000000000000000\r\nxx\r\n0\r\n\r\n", b"more than 15 hex digits"),
    "chunk size not hexadecimal": (b"zz\r\nxx\r\n0\r\n\r\n", b"not hexadecimal"),
}


@pytest.mark.parametrize("case", sorted(CHUNK_ERRORS))
def test_bad_chunk_line_in_the_first_read_gets_400_and_the_head_is_never_forwarded(daemon, port_range, http_backends, case):
    """The chunked body's first bytes arrive in the same read as the head:
    they are checked before the head goes to a member, so the client gets
    400 and the member sees nothing (before, the head had already gone)."""
    body, reason = CHUNK_ERRORS[case]
    backends = http_backends("a")
    d, port = start(daemon, port_range, backends)
    out = raw_exchange(port, b"POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert out.startswith(b"HTTP/1.1 400 "), out
    assert reason in out, out
    # The member would have recorded the POST as soon as its head arrived.
    import time
    time.sleep(0.3)
    assert backends[0].paths() == []
    assert metric_sum(metrics(d), "flowgate_http_requests_total", pool=POOL_ID) == 0


# MARK: x_forwarded_headers and http_cookie_name


def test_x_forwarded_headers_off_passes_the_head_unchanged_and_flowgatectl_turns_them_on(
        daemon, port_range, http_backends, flowgatectl_bin):
    """`x_forwarded_headers: false` (config file): the member sees no
    X-Forwarded-* from Flowgate, and the client's own X-Forwarded-For passes
    as sent; `flowgatectl pool update --x-forwarded-headers on` brings them
    back on the next request of the same keep-alive connection."""
    backends = http_backends("a")
    d, port = start(daemon, port_range, backends, x_forwarded_headers=False)
    url = f"http://127.0.0.1:{port}/headers"
    with requests.Session() as s:
        h = s.get(url, headers={"X-Forwarded-For": "10.9.8.7"}, timeout=5).json()["headers"]
        assert h["x-forwarded-for"] == "10.9.8.7"
        assert "x-forwarded-proto" not in h and "x-forwarded-port" not in h
        show = subprocess.run([str(flowgatectl_bin), "pool", "show", POOL_ID, "--socket", d.control_socket, "--json"],
                              capture_output=True, text=True, timeout=30)
        assert show.returncode == 0, show.stderr
        assert json.loads(show.stdout)["pool"]["x_forwarded_headers"] is False
        r = subprocess.run([str(flowgatectl_bin), "pool", "update", POOL_ID, "--x-forwarded-headers", "on",
                            "--socket", d.control_socket], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        h = s.get(url, headers={"X-Forwarded-For": "10.9.8.7"}, timeout=5).json()["headers"]
        assert h["x-forwarded-for"] == "10.9.8.7, 127.0.0.1"
        assert h["x-forwarded-proto"] == "http" and h["x-forwarded-port"] == str(port)
    bad = subprocess.run([str(flowgatectl_bin), "pool", "update", POOL_ID, "--x-forwarded-headers", "maybe",
                          "--socket", d.control_socket], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and '"maybe" is not on or off' in bad.stderr, bad.stderr


def test_http_cookie_name_from_the_config_file_is_written_and_read(daemon, port_range, http_backends):
    """`http_cookie_name: SRVID`: Flowgate's cookie carries that name, and a
    request carrying it sticks to its member (FLOWGATE_SRV means nothing now)."""
    backends = http_backends("a", "b", "c")
    ports = port_range(1, proto=("tcp",))
    cfg = http_config(ports, backends, session_persistence={"type": "HTTP_COOKIE", "persistence_timeout": 2})
    cfg["http_cookie_name"] = "SRVID"
    daemon(cfg)
    url = f"http://127.0.0.1:{ports[0]}/"
    with requests.Session() as s:
        first = s.get(url, timeout=5)
        assert first.headers["Set-Cookie"].startswith("SRVID=") and first.headers["Set-Cookie"].endswith("Max-Age=120")
        assert [s.get(url, timeout=5).text for _ in range(10)] == [first.text] * 10
        value = s.cookies["SRVID"]
    assert {requests.get(url, cookies={COOKIE: value}, timeout=5).text for _ in range(3)} == {"a", "b", "c"}


@pytest.mark.parametrize("setting, message", [
    ({"http_cookie_name": "SRV ID"},
     "http_cookie_name: \"SRV ID\" is not a cookie name: a space is not allowed"),
    ({"http_cookie_name": "SRV;ID"},
     "http_cookie_name: \"SRV;ID\" is not a cookie name: ';' is not allowed; an RFC 6265 token"),
    ({"http_cookie_name": ""},
     "http_cookie_name: \"\" is not a cookie name: it must have 1..1024 characters (RFC 6265 token)"),
    ({"tcp_pool_x_forwarded_headers": False},
     "pools[1].x_forwarded_headers: false is only allowed on an HTTP pool (a TCP pool adds no headers)"),
])
def test_bad_cookie_name_and_x_forwarded_switch_are_refused_by_check_config(tmp_path, port_range, flowgated_bin,
                                                                            setting, message):
    ports = port_range(2, proto=("tcp",))
    dead = type("Dead", (), {"port": 9, "name": "dead"})()
    cfg = http_config(ports[:1], [dead])
    if "http_cookie_name" in setting:
        cfg["http_cookie_name"] = setting["http_cookie_name"]
    else:
        tcp = pool(fixed_members([dead]), protocol="TCP", lb_algorithm="ROUND_ROBIN",
                   pool_id="0b5c6f55-1c5e-4d5a-9d7e-2a7d8f0c1e21", name="tcp", x_forwarded_headers=False)
        cfg["pools"].append(tcp)
        cfg["accelerators"][0]["listeners"].append(
            listener(ports[1:], tcp["id"], protocol="TCP", accelerator=ACCELERATOR, arn=f"{ACCELERATOR}/listener/5e1ec712"))
    path = tmp_path / "flowgate.yaml"
    cfg["state_file"] = str(tmp_path / "state.json")
    path.write_text(json.dumps(cfg))
    r = subprocess.run([str(flowgated_bin), "--config", str(path), "--check-config"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert message in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.skipif(not shutil.which("wrk"), reason="wrk not installed")
def test_switching_persistence_through_flowgatectl_while_wrk_runs_cuts_nothing(daemon, port_range, http_backends,
                                                                              flowgatectl_bin):
    """The same switch as above through the control API (`flowgatectl pool
    update --persistence`), twice round: wrk sees no socket error and no
    non-2xx response."""
    import time
    backends = http_backends("a", "b", "c")
    d, port = start(daemon, port_range, backends)
    wrk = subprocess.Popen(["wrk", "-t2", "-c8", "-d6s", "--timeout", "3s", f"http://127.0.0.1:{port}/"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for persistence in ("HTTP_COOKIE:5", "APP_COOKIE:JSESSIONID:5", "none") * 2:
            time.sleep(0.7)
            r = subprocess.run([str(flowgatectl_bin), "pool", "update", POOL_ID, "--persistence", persistence,
                                "--socket", d.control_socket], capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
        out, _ = wrk.communicate(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
    assert int(out.split(" requests in")[0].split()[-1]) > 100, out
    assert "Socket errors" not in out and "Non-2xx" not in out, out


# MARK: member connections kept across client connections


class CountingBackend:
    """A raw HTTP/1.1 member that counts the connections it accepts and
    answers each request with `ok`; with `drop_second`, it reads the second
    request of each connection and closes without answering (a member that
    closes an idle connection just as a request goes out on it)."""

    def __init__(self, drop_second: bool = False):
        self.accepted = 0
        self.requests: list[bytes] = []
        self.drop_second = drop_second
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        self.name = "counting"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        data, served = b"", 0
        with c:
            while True:
                while b"\r\n\r\n" in data:
                    head, data = data.split(b"\r\n\r\n", 1)
                    with self.lock:
                        self.requests.append(head)
                    served += 1
                    if self.drop_second and served == 2:
                        return
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                    if b"\r\nconnection: close" in head.lower():
                        return
                try:
                    piece = c.recv(65536)
                except OSError:
                    return
                if not piece:
                    return
                data += piece

    def close(self):
        self.srv.close()


def test_member_connections_are_kept_for_the_next_client_connection(daemon, port_range):
    """20 client connections one after another, each one GET with
    `Connection: close`: the member sees its connections reused (at most one
    per worker, not 20), never sees the client's `Connection: close`, and
    every client still gets its answer with `Connection: close` and its
    connection closed."""
    member = CountingBackend()
    try:
        ports = port_range(1, proto=("tcp",))
        daemon(http_config(ports, [member]))
        for i in range(20):
            out = raw_exchange(ports[0], f"GET /{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            head = out.split(b"\r\n\r\n", 1)[0].lower()
            assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"ok"), out
            assert b"\r\nconnection: close" in head and b"keep-alive" not in head, out
        assert len(member.requests) == 20
        assert member.accepted <= 2, member.accepted   # workers: 2
        assert not any(b"connection: close" in r.lower() for r in member.requests)
    finally:
        member.close()


def test_a_reused_member_connection_closed_unanswered_is_retried_on_a_new_one(daemon, port_range):
    """The member closes a kept connection as the next request arrives on it
    (it reads the request and closes): a GET is sent again on a new
    connection and answered, never a 502; a POST never takes a kept
    connection, so it is never sent twice."""
    member = CountingBackend(drop_second=True)
    try:
        ports = port_range(1, proto=("tcp",))
        cfg = http_config(ports, [member])
        cfg["workers"] = 1    # one worker: every client connection finds the kept member connection
        daemon(cfg)
        for i in range(6):
            out = raw_exchange(ports[0], f"GET /{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            assert out.startswith(b"HTTP/1.1 200 "), (i, out)
        # Each kept connection served one request, then dropped the next, which went again on a new one.
        gets = [r for r in member.requests if r.startswith(b"GET")]
        assert len(gets) > 6 and member.accepted >= 6
        before = len(member.requests)
        out = raw_exchange(ports[0], b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
        assert out.startswith(b"HTTP/1.1 200 "), out
        assert [r.split(b" ")[0] for r in member.requests[before:]] == [b"POST"]
    finally:
        member.close()
