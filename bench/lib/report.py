"""Statistics over rounds and the Markdown report.

Per metric and proxy: the median and min-max of the absolute values, and the
median over rounds of the ratio to `direct` measured in the same round (for
latency: the added microseconds). The machine is shared and noisy, so the
same-round ratios are the figures; absolute numbers are context.
"""
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    compare: str  # "ratio" (higher is better), "added" (lower is better), "none"
    digits: int


ROWS = [
    Row("tcp1", "TCP 1 stream", "Gbit/s", "ratio", 2),
    Row("tcp4", "TCP 4 streams", "Gbit/s", "ratio", 2),
    Row("udp_rate", "UDP 64 B datagrams received", "k/s", "ratio", 1),
    Row("udp_loss", "UDP 64 B loss", "%", "none", 1),
    Row("udpw_rate", "UDP 64 B datagrams received, 4 MiB buffers (-w 4M)", "k/s", "ratio", 1),
    Row("udpw_loss", "UDP 64 B loss, 4 MiB buffers", "%", "none", 1),
    Row("cps", "new TCP connections (Connection: close)", "conn/s", "ratio", 0),
    Row("rps", "keep-alive requests", "req/s", "ratio", 0),
    Row("hka", "HTTP pool: keep-alive requests (cookie insert)", "req/s", "ratio", 0),
    Row("hcps", "HTTP pool: new connections (Connection: close)", "conn/s", "ratio", 0),
    Row("lat_p50", "TCP round trip p50 at 10 k msg/s", "µs", "added", 1),
    Row("lat_p99", "TCP round trip p99 at 10 k msg/s", "µs", "added", 1),
    Row("ulat_p50", "UDP round trip p50 at 10 k msg/s", "µs", "added", 1),
    Row("ulat_p99", "UDP round trip p99 at 10 k msg/s", "µs", "added", 1),
    Row("rss_start", "RSS at start", "MiB", "none", 1),
    Row("rss_idle", "RSS with 2,000 idle connections", "MiB", "none", 1),
    Row("rss_peak", "RSS peak (sum of VmHWM)", "MiB", "none", 1),
    Row("idle_conn", "memory per idle TCP connection", "KiB", "none", 2),
]
TEST_OF_ROW = {"tcp1": "tcp1", "tcp4": "tcp4", "udp_rate": "udp", "udp_loss": "udp", "udpw_rate": "udpw", "udpw_loss": "udpw", "cps": "cps", "rps": "rps",
               "hka": "hka", "hcps": "hcps",
               "lat_p50": "lat", "lat_p99": "lat", "ulat_p50": "ulat", "ulat_p99": "ulat",
               "rss_start": "mem", "rss_idle": "mem", "rss_peak": "mem", "idle_conn": "mem"}
CPU_TESTS = [("tcp1", "TCP 1 stream"), ("tcp4", "TCP 4 streams"), ("udp", "UDP 64 B"), ("udpw", "UDP 64 B, -w 4M"),
             ("cps", "new connections"), ("rps", "keep-alive requests"),
             ("hka", "HTTP pool keep-alive requests"), ("hcps", "HTTP pool new connections"), ("lat", "TCP latency"),
             ("ulat", "UDP latency")]


class Results:
    """values[(row, proxy)] -> {round: value}; failures[(test, proxy)] -> reason."""

    def __init__(self):
        self.values = {}
        self.cpu = {}
        self.failures = {}
        self.not_applicable = set()

    def add(self, round_index, proxy, figures):
        for key, value in figures.items():
            self.values.setdefault((key, proxy), {})[round_index] = value

    def add_cpu(self, round_index, proxy, test, percent):
        self.cpu.setdefault((test, proxy), {})[round_index] = percent

    def fail(self, test, proxy, reason):
        self.failures.setdefault((test, proxy), reason)

    @classmethod
    def from_json(cls, data):
        """The inverse of `to_json` (rounds come back as ints), for bench/chart.py."""
        r = cls()
        for k, per_round in data.get("values", {}).items():
            row, proxy = k.split("|", 1)
            r.values[(row, proxy)] = {int(i): v for i, v in per_round.items()}
        for k, per_round in data.get("cpu_percent", {}).items():
            test, proxy = k.split("|", 1)
            r.cpu[(test, proxy)] = {int(i): v for i, v in per_round.items()}
        for k, reason in data.get("failures", {}).items():
            test, proxy = k.split("|", 1)
            r.failures[(test, proxy)] = reason
        r.not_applicable = {tuple(k.split("|", 1)) for k in data.get("not_applicable", [])}
        return r

    def to_json(self):
        return {"values": {f"{k[0]}|{k[1]}": v for k, v in self.values.items()},
                "cpu_percent": {f"{k[0]}|{k[1]}": v for k, v in self.cpu.items()},
                "failures": {f"{k[0]}|{k[1]}": v for k, v in self.failures.items()},
                "not_applicable": sorted(f"{t}|{p}" for t, p in self.not_applicable)}


def _fmt(value, digits):
    return f"{value:,.{digits}f}"


def same_round_ratio(results, row, proxy):
    """Median over rounds of value / direct's value in the same round (None
    without a common round); the figure the table prints in bold."""
    per_round = results.values.get((row.key, proxy), {})
    direct = results.values.get((row.key, "direct"), {})
    ratios = [per_round[r] / direct[r] for r in per_round if r in direct and direct[r] > 0]
    return statistics.median(ratios) if ratios else None


def _cell(results, row, proxy, notes):
    test = TEST_OF_ROW[row.key]
    if (test, proxy) in results.not_applicable:
        return "n/a"
    per_round = results.values.get((row.key, proxy), {})
    if not per_round:
        reason = results.failures.get((test, proxy))
        if reason is None:
            return "–"
        notes.setdefault(reason, len(notes) + 1)
        return f"failed [{notes[reason]}]"
    samples = list(per_round.values())
    absolute = f"{_fmt(statistics.median(samples), row.digits)} ({_fmt(min(samples), row.digits)}–{_fmt(max(samples), row.digits)})"
    if (test, proxy) in results.failures:
        reason = results.failures[(test, proxy)]
        notes.setdefault(reason, len(notes) + 1)
        absolute += f" [{notes[reason]}]"
    if proxy == "direct" or row.compare == "none":
        return absolute
    direct = results.values.get((row.key, "direct"), {})
    same_round = [(per_round[r], direct[r]) for r in per_round if r in direct]
    if not same_round:
        return absolute
    if row.compare == "ratio":
        ratio = same_round_ratio(results, row, proxy)
        return f"**{ratio:.2f}×** · {absolute}" if ratio is not None else absolute
    added = statistics.median(v - d for v, d in same_round)
    return f"**{added:+.1f} µs** · {absolute}"


def markdown(results, proxies, header_lines):
    notes = {}
    lines = list(header_lines)
    lines.append("")
    lines.append("Cells: **same-round ratio to direct** (median over rounds; for latency the added µs) · "
                 "median absolute (min–max over rounds).")
    lines.append("")
    lines.append("| metric | " + " | ".join(proxies) + " |")
    lines.append("|---" * (len(proxies) + 1) + "|")
    for row in ROWS:
        if not any((row.key, p) in results.values or (TEST_OF_ROW[row.key], p) in results.failures for p in proxies):
            continue
        cells = [_cell(results, row, p, notes) for p in proxies]
        lines.append(f"| {row.label} ({row.unit}) | " + " | ".join(cells) + " |")
    cpu_proxies = [p for p in proxies if p != "direct"]
    cpu_rows = [(t, label) for t, label in CPU_TESTS if any((t, p) in results.cpu for p in cpu_proxies)]
    if cpu_rows:
        lines.append("")
        lines.append("Proxy CPU during each test (utime+stime of all its processes / wall time, % of one core; "
                     "median (min–max)):")
        lines.append("")
        lines.append("| test | " + " | ".join(cpu_proxies) + " |")
        lines.append("|---" * (len(cpu_proxies) + 1) + "|")
        for test, label in cpu_rows:
            cells = []
            for p in cpu_proxies:
                samples = list(results.cpu.get((test, p), {}).values())
                if (test, p) in results.not_applicable:
                    cells.append("n/a")
                elif samples:
                    cells.append(f"{statistics.median(samples):.0f} ({min(samples):.0f}–{max(samples):.0f})")
                else:
                    cells.append("–")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines.append("Failures:")
        for reason, number in sorted(notes.items(), key=lambda item: item[1]):
            lines.append(f"- [{number}] {reason}")
    return "\n".join(lines) + "\n"
