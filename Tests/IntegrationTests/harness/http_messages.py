"""Seeded generator of HTTP/1.1 request and response streams for the parser
differential test (test_http_parser_differential.py): well-formed messages
(pipelined 1-3 per stream; Content-Length, chunked with extensions and
trailers, read-until-close, 1xx/101/204/304), then mutations that aim at the
places parsers disagree: the smuggling vectors (CL.TE, TE.CL, TE.TE
obfuscations, duplicate Content-Length, chunk-size overflow), line-ending
damage (bare CR, bare LF, obs-fold), whitespace before ':', invalid token
bytes, and random byte edits."""
from __future__ import annotations

import random

METHODS = [b"GET"] * 6 + [b"POST"] * 4 + [b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE",
                                          b"PROPFIND", b"M-SEARCH", b"PURGE", b"QUERY", b"CONNECT", b"FOO", b"get"]
TARGETS = [b"/", b"/index.html", b"/a/b?c=d&e=f", b"/%20x?y#frag", b"*", b"http://example.com/x",
           b"HTTPS://h:8443/p?q", b"example.com:443", b"/~user/{x}|y^`\\z", b"//double", b"http:/x"]
STATUSES = [200] * 6 + [201, 204, 206, 301, 302, 304, 100, 101, 103, 400, 404, 500, 502, 599, 600, 99]
REASONS = [b"OK", b"", b"Not Found", b"Weird \x80 reason", b"A\tB", b"Status"]
NAMES = [b"Accept", b"User-Agent", b"X-Request-Id", b"Cookie", b"Set-Cookie", b"Cache-Control", b"X-A",
         b"x-lower", b"Vary", b"ETag", b"Via", b"Expect", b"Connection", b"Keep-Alive", b"Upgrade", b"A-B_C.D~E"]
VALUES = [b"*/*", b"curl/8.0", b"abc-123", b"a=b; c=d", b"no-cache, private", b"", b"  padded  ",
          b"100-continue", b"keep-alive", b"close", b"upgrade", b"websocket", b"\x80\xff", b"a\tb", b'"quoted"']
TE_OBFUSCATIONS = [b"chunked", b"CHUNKED", b"Chunked", b" chunked", b"chunked ", b"\tchunked", b"xchunked",
                   b"chunked, identity", b"identity, chunked", b"gzip, chunked", b"chunked, chunked", b"chunked,",
                   b", chunked", b"chunked;q=1", b"chunk", b"chunked\x0b", b"\x0bchunked", b"identity", b"",
                   b'"chunked"', b"chunked\x00", b"chun\tked"]
CL_VARIANTS = [b"+1", b"-1", b"0x10", b"1 1", b"1,1", b"1, 1", b"01", b"00000000000000000001", b"", b" ",
               b"99999999999999999999", b"18446744073709551616", b"123456789012345678", b"1234567890123456789",
               b"1.0", b"1e3", b"\x311"]
CHUNK_SIZES = [b"ffffffffffffffffff", b"10000000000000000", b"0000000000000000003", b"fffffffffffffff",
               b"7fffffffffffffff", b"-1", b"0x3", b"3 ", b" 3", b"3\t", b"", b"g", b"3;", b"3;a=", b"3;a b",
               b'3;a="x', b'3;a="x\\"y"', b"3;;", b"3 ;a=b", b"3;a=b ", b"3;a=\x01"]
BYTES = [b"\r", b"\n", b"\x00", b" ", b"\t", b":", b",", b";", b'"', b"\x7f", b"\x80", b"\xff", b"a", b"0", b"f",
         b"\x0b", b"\x0c", b"(", b"@", b"/", b"\\", b"{"]


def _body(rng: random.Random, allow_close: bool) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Framing fields and the encoded body."""
    kind = rng.choice(["none", "cl", "cl", "chunked", "chunked"] + (["close"] if allow_close else []))
    data = bytes(rng.choice(b"abcxyz0123\r\n \x00\xff") for _ in range(rng.choice([0, 1, 3, 10, 100, 700])))
    if kind == "none":
        return [], b""
    if kind == "cl":
        return [(b"Content-Length", str(len(data)).encode())], data
    if kind == "close":
        return [], data
    out = b""
    i = 0
    while i < len(data):
        n = rng.randint(1, max(1, len(data) - i))
        ext = rng.choice([b"", b"", b";a", b";a=b", b';name="v\\"al ue"', b";x=1;y=2"])
        size = format(n, rng.choice(["x", "X", "04x"])).encode()
        out += size + ext + b"\r\n" + data[i:i + n] + b"\r\n"
        i += n
    trailers = rng.choice([b"", b"", b"X-Trailer: t\r\n", b"A: 1\r\nB: two words \r\n"])
    out += b"0" + rng.choice([b"", b";end"]) + b"\r\n" + trailers + b"\r\n"
    return [(b"Transfer-Encoding", b"chunked")], out


def _fields(rng: random.Random) -> list[tuple[bytes, bytes]]:
    return [(rng.choice(NAMES), rng.choice(VALUES)) for _ in range(rng.choice([0, 1, 2, 3, 5]))]


def _head(start: bytes, fields: list[tuple[bytes, bytes]], rng: random.Random) -> bytes:
    sep = rng.choice([b": ", b": ", b":", b":\t", b":  "])
    return start + b"\r\n" + b"".join(n + sep + v + b"\r\n" for n, v in fields) + b"\r\n"


def request(rng: random.Random) -> bytes:
    method = rng.choice(METHODS)
    target = rng.choice(TARGETS) if rng.random() < 0.3 else rng.choice(TARGETS[:3])
    version = b"HTTP/1.1" if rng.random() < 0.85 else rng.choice([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"HTTX/1.1"])
    fields = [(b"Host", rng.choice([b"example.com", b"h:8080", b""]))] if rng.random() < 0.95 else []
    fields += _fields(rng)
    framing, body = _body(rng, allow_close=False)
    fields += framing
    rng.shuffle(fields)
    return _head(method + b" " + target + b" " + version, fields, rng) + body


def response(rng: random.Random, last: bool) -> bytes:
    status = rng.choice(STATUSES)
    version = b"HTTP/1.1" if rng.random() < 0.9 else rng.choice([b"HTTP/1.0", b"HTTP/2", b"HTTP/1.1 "])
    start = version + b" " + str(status).encode()
    if rng.random() < 0.9:
        start += b" " + rng.choice(REASONS)
    fields = _fields(rng)
    if status == 101 and rng.random() < 0.8:
        fields += [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]
    framing, body = _body(rng, allow_close=last)
    if status < 200 or status in (204, 304):
        body = b""
        if rng.random() < 0.7:
            framing = []
    fields += framing
    rng.shuffle(fields)
    return _head(start, fields, rng) + body


def _replace_field(msg: bytes, rng: random.Random, name: bytes, value: bytes) -> bytes:
    head, sep, rest = msg.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    lines.insert(rng.randint(1, len(lines)), name + b": " + value)
    return b"\r\n".join(lines) + sep + rest


def mutate(msg: bytes, rng: random.Random) -> bytes:
    """One mutation, chosen among the smuggling vectors and byte-level damage."""
    op = rng.randrange(16)
    if op == 0:  # CL.TE / TE.CL: a second framing header
        return _replace_field(msg, rng, rng.choice([b"Content-Length", b"Transfer-Encoding"]),
                              rng.choice([b"0", b"3", b"chunked"]))
    if op == 1:  # TE.TE obfuscations
        return _replace_field(msg, rng, rng.choice([b"Transfer-Encoding", b"transfer-encoding", b"Transfer-Encoding "]),
                              rng.choice(TE_OBFUSCATIONS))
    if op == 2:  # duplicate or malformed Content-Length
        return _replace_field(msg, rng, b"Content-Length", rng.choice(CL_VARIANTS + [b"0", b"3"]))
    if op == 3:  # chunk-size overflow and malformed chunk lines, in a chunked message
        head = msg.split(b"\r\n\r\n", 1)[0]
        lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith((b"content-length", b"transfer-encoding"))]
        return b"\r\n".join(lines + [b"Transfer-Encoding: chunked"]) + b"\r\n\r\n" + rng.choice(CHUNK_SIZES) \
            + b"\r\nabc\r\n0\r\n\r\n"
    if op == 4:  # bare LF for a CRLF
        idx = [i for i in range(len(msg)) if msg.startswith(b"\r\n", i)]
        i = rng.choice(idx) if idx else 0
        return msg[:i] + msg[i + 1:] if idx else msg
    if op == 5:  # bare CR for a CRLF
        idx = [i for i in range(len(msg)) if msg.startswith(b"\r\n", i)]
        i = rng.choice(idx) if idx else 0
        return msg[:i + 1] + msg[i + 2:] if idx else msg
    if op == 6:  # obs-fold
        return msg.replace(b"\r\n", b"\r\n" + rng.choice([b" ", b"\t"]) + b"folded\r\n", 1 + rng.randrange(2))
    if op == 7:  # whitespace before the colon
        return msg.replace(b": ", rng.choice([b" : ", b"\t: ", b" :"]), 1)
    if op == 8:  # a byte replaced in the head
        end = msg.find(b"\r\n\r\n")
        i = rng.randrange(max(1, end if end > 0 else len(msg)))
        return msg[:i] + rng.choice(BYTES) + msg[i + 1:]
    if op == 9:  # a byte inserted anywhere
        i = rng.randrange(len(msg) + 1)
        return msg[:i] + rng.choice(BYTES) + msg[i:]
    if op == 10:  # a byte deleted anywhere
        i = rng.randrange(max(1, len(msg)))
        return msg[:i] + msg[i + 1:]
    if op == 11:  # truncation
        return msg[:rng.randrange(len(msg) + 1)]
    if op == 12:  # a header line duplicated
        lines = msg.split(b"\r\n")
        if len(lines) > 2:
            i = rng.randrange(1, len(lines) - 1)
            lines.insert(i, lines[i])
        return b"\r\n".join(lines)
    if op == 13:  # empty lines before the start line
        return rng.choice([b"\r\n", b"\r\n\r\n", b"\n", b" \r\n"]) + msg
    if op == 14:  # a Host, Connection or Upgrade header added
        return _replace_field(msg, rng, rng.choice([b"Host", b"Connection", b"Upgrade"]),
                              rng.choice([b"x", b"upgrade", b"close", b"websocket", b"keep-alive, Upgrade"]))
    # a random header name byte
    return _replace_field(msg, rng, b"X" + rng.choice(BYTES) + b"Y", b"v")


def stream(rng: random.Random, kind: str, mutation_rate: float = 0.6) -> tuple[bytes, int]:
    """A stream of 1-3 messages (the last maybe mutated) and how many messages it holds."""
    n = rng.choice([1, 1, 1, 2, 3])
    parts = [request(rng) if kind == "Q" else response(rng, last=(i == n - 1)) for i in range(n)]
    if rng.random() < mutation_rate:
        i = rng.randrange(n)
        for _ in range(rng.choice([1, 1, 2])):
            parts[i] = mutate(parts[i], rng)
    return b"".join(parts), n
