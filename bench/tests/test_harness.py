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

import measure  # noqa: E402
import report  # noqa: E402
from proxies import Flowgated  # noqa: E402
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


class PortPlanTests(unittest.TestCase):
    def test_direct_uses_backend_ports_and_proxies_are_offset(self):
        plan = PortPlan(15000)
        self.assertEqual(plan.proxy("direct", "iperf"), 15201)
        self.assertEqual(plan.proxy("flowgated", "iperf"), 16201)
        self.assertEqual(plan.proxy("nginx", "http"), 19280)


class FlowgatedConfigTests(unittest.TestCase):
    def test_iperf_port_has_tcp_and_udp_listeners(self):
        proxy = Flowgated("flowgated", PortPlan(15000), None, "", "")
        text = proxy.config_text("/tmp/x")
        self.assertEqual(text.count("PortRanges: [{FromPort: 16201, ToPort: 16201}]"), 2)
        self.assertIn("workers: 2", text)
        self.assertIn("protocol_port: 15201", text)
        proxy.udp_enabled = False
        self.assertEqual(proxy.config_text("/tmp/x").count("FromPort: 16201,"), 1)


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
