"""llhttp (through httptools) as the reference for the HTTP parser
differential test: parses one stream of pipelined messages and describes it
in the shape flowgate-httpparse prints (Tests/Tools/HTTPParseDump/main.swift),
so the two can be compared field by field.

llhttp runs in its default strict mode (no lenient flags). Normalisations,
each a representation difference and not a parsing one: llhttp keeps trailing
whitespace in field values (Flowgate strips it, as RFC 9110 §5.5 says a
recipient may); trailers come as raw bytes from Flowgate and are split here."""
from __future__ import annotations

import httptools


class _Collector:
    def __init__(self, parser_ref):
        self.p = parser_ref
        self.msgs: list[dict] = []
        self.cur: dict | None = None
        self.in_body = False

    def on_message_begin(self):
        self.cur = {"t": b"", "r": b"", "h": [], "b": b"", "tr": []}
        self.in_body = False

    def on_url(self, url):
        self.cur["t"] += url

    def on_status(self, reason):
        self.cur["r"] += reason

    def on_header(self, name, value):
        (self.cur["tr"] if self.in_body else self.cur["h"]).append((name, value.rstrip(b" \t")))

    def on_headers_complete(self):
        p = self.p[0]
        self.cur["v"] = int(p.get_http_version().split(".")[1])
        if isinstance(p, httptools.HttpRequestParser):
            self.cur["m"] = p.get_method()
        else:
            self.cur["s"] = p.get_status_code()
        self.in_body = True

    def on_body(self, data):
        self.cur["b"] += data

    def on_message_complete(self):
        self.msgs.append(self.cur)
        self.cur = None


def parse(kind: str, data: bytes) -> dict:
    """{"msgs": [...], "tail": ok|error|upgrade|open-head|open-body, "open": msg, "err": str}"""
    ref: list = []
    c = _Collector(ref)
    p = httptools.HttpRequestParser(c) if kind == "Q" else httptools.HttpResponseParser(c)
    ref.append(p)
    out = {"msgs": c.msgs, "tail": "ok", "open": None, "err": ""}
    try:
        p.feed_data(data)
    except httptools.HttpParserUpgrade:
        out["tail"] = "upgrade"
        out["open"] = c.msgs.pop() if c.msgs else c.cur
        return out
    except httptools.HttpParserError as e:
        # llhttp's "Data after `Connection: close`": bytes after a message that
        # ends the connection, which a relay never parses.
        out["tail"] = "closed" if "Data after" in str(e) else "error"
        out["err"] = f"{type(e).__name__}: {e}"
        return out
    if c.cur is not None:
        out["tail"] = "open-body" if c.in_body else "open-head"
        out["open"] = c.cur
    return out
