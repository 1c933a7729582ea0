"""Black-box test of slow start (issue 4, docs/architecture.md §3.5) through the
spawned flowgated: a member added by a SIGHUP config change ramps linearly
from 1/duration of its weight to all of it, so right after joining it takes
far fewer new connections than its steady share, about half-way through the
ramp a share matching its half weight, and after `duration` its full share.
"""
from __future__ import annotations

import time

import pytest

from harness.selection import fixed_members, names_of_connections, selection_config, tally

CONNECTIONS = 200
DURATION_S = 30    # the minimum (docs/api.md §4.4)


def _start_then_add_c(daemon, tcp_backend, port_range, slow_start: dict):
    """A ROUND_ROBIN pool of a and b, then c (same weight) added by SIGHUP.
    Returns (port, monotonic time the reload was acknowledged)."""
    a, b, c = (tcp_backend(n, mode="id") for n in ("a", "b", "c"))
    ports = port_range(1)
    d = daemon(selection_config(ports, fixed_members([a, b]), slow_start=slow_start))
    assert sorted(names_of_connections(ports[0], 4)) == ["a", "a", "b", "b"]

    d.write_config(selection_config(ports, fixed_members([a, b, c]), slow_start=slow_start))
    d.sighup(wait=True)
    return ports[0], time.monotonic()


def _tally(port: int, label: str) -> dict[str, int]:
    counts = tally(names_of_connections(port, CONNECTIONS))
    print(f"{label}: {counts}")
    return counts


@pytest.mark.slow
def test_member_added_under_slow_start_ramps_to_its_share(daemon, tcp_backend, port_range):
    """slow_start {enable, duration 30}. a and b were there when the daemon
    started (they did not join: full weight); c joins by SIGHUP at t = 0 and
    has effective weight w(t) = max(1/30, t/30) of 1. A member's share of
    smooth WRR is its weight over the sum, so of 200 connections c takes:
    - at once (t < ~2 s): under 2 × (2/30)/(2 + 2/30) ≈ 6%, i.e. ≤ 12; at most
      10 is asserted, against a steady share of 66.7 (on this machine: 0..2);
    - from t = 15 s (w ≈ 0.5..0.55 while they run): about w/(2 + w) ≈ 20%,
      i.e. 40..44; 25..55 is asserted (clearly ramping, clearly not full);
    - from t = 31 s (w = 1): its third, 62..71 asserted (the RR scores carry
      a little history from the ramp, so not exactly 67)."""
    port, joined = _start_then_add_c(daemon, tcp_backend, port_range, {"enable": True, "duration": DURATION_S})

    early = _tally(port, "t=0")
    assert early.get("c", 0) <= 10, early
    assert abs(early["a"] - early["b"]) <= 1, early

    time.sleep(max(0.0, joined + DURATION_S / 2 - time.monotonic()))
    half = _tally(port, "t=15s")
    assert 25 <= half.get("c", 0) <= 55, half

    time.sleep(max(0.0, joined + DURATION_S + 1 - time.monotonic()))
    full = _tally(port, "t=31s")
    assert 62 <= full.get("c", 0) <= 71, full


def test_member_added_without_slow_start_takes_its_full_share(daemon, tcp_backend, port_range):
    """Control for the test above: slow start disabled, c takes its full
    third at once: smooth WRR over equal weights gives 67/67/66 of 200."""
    port, _ = _start_then_add_c(daemon, tcp_backend, port_range, {"enable": False, "duration": DURATION_S})
    counts = _tally(port, "no slow start")
    assert sorted(counts.values()) == [66, 67, 67], counts
