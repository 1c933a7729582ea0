"""Unit tests of the benchmark's arithmetic and parsers (no network, no tools):

    python3 -m unittest discover -s bench/tests -v
"""
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "callgrind"))

import chart  # noqa: E402
import measure  # noqa: E402
import report  # noqa: E402
from proxies import Flowgated, HAProxy, Nginx  # noqa: E402
from services import PortPlan  # noqa: E402


class ReportTests(unittest.TestCase):
    def results(self):
        r = report.Results()
        # Round 0: direct 20, proxy 10 (0.5); round 1: direct 10, proxy 7 (0.7); round 2: direct 30, proxy 12 (0.4)
        for round_index, (direct, proxy) in enumerate([(20, 10), (10, 7), (30, 12)]):
            r.add(round_index, "direct", {"tcp1": direct, "lat_p99": direct})
            r.add(round_index, "flowgated", {"tcp1": proxy, "lat_p99": proxy + 100})
        return r

    def test_ratio_is_median_of_same_round_ratios(self):
        text = report.markdown(self.results(), ["direct", "flowgated"], ["# t"])
        # Median of 0.5, 0.7, 0.4 is 0.5; median of 10, 7, 12 is 10; min-max 7-12.
        self.assertIn("| TCP 1 stream (Gbit/s) | 20.00 (10.00–30.00) | **0.50×** · 10.00 (7.00–12.00) |", text)

    def test_latency_shows_added_microseconds(self):
        text = report.markdown(self.results(), ["direct", "flowgated"], ["# t"])
        # proxy - direct per round: 110-20=90, 107-10=97, 112-30=82 -> median 90
        self.assertIn("**+90.0 µs** · 110.0 (107.0–112.0)", text)

    def test_failures_are_numbered_notes(self):
        r = report.Results()
        r.add(0, "direct", {"tcp1": 20})
        r.fail("tcp1", "flowgated", "flowgated did not start: boom")
        r.not_applicable.add(("udp", "haproxy"))
        text = report.markdown(r, ["direct", "flowgated"], ["# t"])
        self.assertIn("| TCP 1 stream (Gbit/s) | 20.00 (20.00–20.00) | failed [1] |", text)
        self.assertIn("- [1] flowgated did not start: boom", text)


class ChartTests(unittest.TestCase):
    def test_one_bar_per_proxy_per_ratio_metric_at_the_table_ratio(self):
        r = ReportTests.results(None)
        r.add(0, "nginx", {"tcp1": 30})   # one round only: 30 / 20 = 1.5
        text = chart.svg(r, ["direct", "flowgated", "nginx"], "t & co")
        import xml.dom.minidom
        doc = xml.dom.minidom.parseString(text)   # well-formed, title escaped
        bars = [t.firstChild.data for t in doc.getElementsByTagName("title")]
        # Only ratio rows (tcp1; lat_p99 is added µs), no bar for direct.
        self.assertEqual(bars, ["flowgated TCP 1 stream: 0.50×", "nginx TCP 1 stream: 1.50×"])
        self.assertIn("t &amp; co", text)

    def test_redraws_from_the_json_the_run_writes(self):
        r = ReportTests.results(None)
        data = {"settings": {"proxies": ["direct", "flowgated"]}, "title": "run", **r.to_json()}
        self.assertEqual(chart.from_json(data), chart.svg(r, ["direct", "flowgated"], "run"))


class PortPlanTests(unittest.TestCase):
    def test_direct_uses_backend_ports_and_proxies_are_offset(self):
        plan = PortPlan(15000)
        self.assertEqual(plan.proxy("direct", "iperf"), 15201)
        self.assertEqual(plan.proxy("flowgated", "iperf"), 16201)
        self.assertEqual(plan.proxy("nginx", "http"), 19280)

    def test_http_pool_service_forwards_to_the_http_backend(self):
        plan = PortPlan(15000)
        self.assertEqual(plan.backend("httppool"), 15280)
        self.assertEqual(plan.proxy("direct", "httppool"), 15280)
        self.assertEqual(plan.proxy("flowgated", "httppool"), 16281)


class FlowgatedConfigTests(unittest.TestCase):
    def test_iperf_port_has_tcp_and_udp_listeners(self):
        proxy = Flowgated("flowgated", PortPlan(15000), None, "", "")
        text = proxy.config_text("/tmp/x")
        self.assertEqual(text.count("PortRanges: [{FromPort: 16201, ToPort: 16201}]"), 2)
        self.assertIn("workers: 2", text)
        self.assertIn("protocol_port: 15201", text)
        proxy.udp_enabled = False
        self.assertEqual(proxy.config_text("/tmp/x").count("FromPort: 16201,"), 1)


    def test_http_pool_has_http_protocol_and_cookie_persistence(self):
        text = Flowgated("flowgated", PortPlan(15000), None, "", "").config_text("/tmp/x")
        pool = text[text.index("name: httppool-tcp"):]
        pool = pool[:pool.index("members:")]
        self.assertIn("protocol: HTTP\n", pool)
        self.assertIn("session_persistence: {type: HTTP_COOKIE}", pool)
        self.assertEqual(text.count("protocol: HTTP\n"), 1)  # every other pool stays TCP/UDP


class HTTPModeConfigTests(unittest.TestCase):
    def written(self, proxy):
        with tempfile.TemporaryDirectory() as workdir:
            argv, _ = proxy.prepare(workdir)
            with open(argv[-1]) as f:
                return f.read()

    def test_haproxy_http_section_inserts_a_cookie(self):
        text = self.written(HAProxy("haproxy", PortPlan(15000), None, splice=False))
        section = text[text.index("listen httppool"):]
        self.assertIn("mode http", section)
        self.assertIn("cookie SRV insert indirect nocache", section)
        self.assertIn("server httppool_1 127.0.0.1:15280 cookie s1", section)

    def test_nginx_http_block_keeps_upstream_connections(self):
        text = self.written(Nginx("nginx", PortPlan(15000), None))
        http = text[text.index("\nhttp {"):]
        for line in ("keepalive 64;", "proxy_pass http://httppool;", "proxy_http_version 1.1;",
                     'proxy_set_header Connection "";', "listen 127.0.0.1:19281"):
            self.assertIn(line, http)
        self.assertNotIn("19281", text[:text.index("\nhttp {")])  # not also a stream relay


class CallgrindParserTests(unittest.TestCase):
    PROFILE = """version: 1
creator: callgrind-3.19.0
events: Ir
fl=(1) a.c
fn=(1) relay
3 100
cfn=(2) swift_retain
calls=4 0
3 40
fn=(2)
0 40
fn=(3) main
1 5
cfn=(1)
calls=1 0
1 140
cfn=(2)
calls=2 0
1 20
totals: 205
"""

    def test_self_cost_excludes_inclusive_call_cost_and_calls_are_summed(self):
        with tempfile.NamedTemporaryFile("w", suffix=".out", delete=False) as f:
            f.write(self.PROFILE)
        try:
            self_ir, calls = measure.parse_profile(f.name)
            self.assertEqual(self_ir, {"relay": 100, "swift_retain": 40, "main": 5})
            self.assertEqual(calls, {"swift_retain": 6, "relay": 1})
            self.assertEqual(measure.total_ir(f.name), 205)
        finally:
            os.unlink(f.name)


if __name__ == "__main__":
    unittest.main()
