"""The benchmark table as a bar chart (SVG written by hand, no plotting
library): one group of bars per throughput metric, one bar per proxy, each
bar the same-round ratio to direct that the Markdown table prints in bold
(report.same_round_ratio). A dashed line marks 1.0 (as fast as no proxy).

Latency (added µs) and memory rows have no ratio to direct and are left to
the table.
"""
from xml.sax.saxutils import escape

import report

# One colour per proxy, stable across runs so charts compare by eye.
COLOURS = {"flowgated": "#1f77b4", "haproxy": "#d62728", "haproxy-splice": "#ff9896", "nginx": "#2ca02c"}
FALLBACK = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

# Short labels under each group (the table's labels are too long for an axis).
SHORT = {"tcp1": "TCP 1 stream", "tcp4": "TCP 4 streams", "udp_rate": "UDP 64 B", "udpw_rate": "UDP 64 B -w 4M",
         "cps": "new conns/s", "rps": "keep-alive req/s", "hka": "HTTP keep-alive", "hcps": "HTTP new conns"}

BAR, GAP, LEFT, TOP, PLOT_H, BOTTOM = 18, 26, 56, 64, 300, 64


def ratios(results, proxies):
    """[(row, {proxy: ratio or None})] for every ratio row with any value."""
    out = []
    for row in report.ROWS:
        if row.compare != "ratio":
            continue
        per_proxy = {p: report.same_round_ratio(results, row, p) for p in proxies}
        if any(v is not None for v in per_proxy.values()):
            out.append((row, per_proxy))
    return out


def svg(results, proxies, title):
    """The chart as SVG text; `proxies` in bar order (direct is left out)."""
    proxies = [p for p in proxies if p != "direct"]
    groups = ratios(results, proxies)
    top = max([1.0] + [v for _, per in groups for v in per.values() if v is not None])
    scale_max = max(1.0, -(-top * 4 // 1) / 4)   # next quarter above the tallest bar
    group_w = len(proxies) * BAR + GAP
    width = LEFT + max(1, len(groups)) * group_w + 20
    height = TOP + PLOT_H + BOTTOM
    colour = {p: COLOURS.get(p, FALLBACK[i % len(FALLBACK)]) for i, p in enumerate(proxies)}

    def y(v):
        return TOP + PLOT_H - v / scale_max * PLOT_H

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>',
             f'<text x="{LEFT}" y="34" fill="#555">ratio to direct in the same round (median over rounds); '
             'higher is better, 1.0 = no proxy</text>']
    # Legend.
    x = LEFT
    for p in proxies:
        parts.append(f'<rect x="{x}" y="42" width="10" height="10" fill="{colour[p]}"/>')
        parts.append(f'<text x="{x + 14}" y="51">{escape(p)}</text>')
        x += 14 + 7 * len(p) + 18
    # Grid and axis.
    step = 0.25
    v = 0.0
    while v <= scale_max + 1e-9:
        gy = y(v)
        dash = ' stroke-dasharray="4 3"' if abs(v - 1.0) < 1e-9 else ""
        stroke = "#333" if abs(v - 1.0) < 1e-9 else "#ddd"
        parts.append(f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{width - 20}" y2="{gy:.1f}" stroke="{stroke}"{dash}/>')
        parts.append(f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">{v:.2f}×</text>')
        v += step
    # Bars.
    for g, (row, per) in enumerate(groups):
        gx = LEFT + g * group_w + GAP / 2
        for i, p in enumerate(proxies):
            value = per.get(p)
            bx = gx + i * BAR
            if value is None:
                parts.append(f'<text x="{bx + BAR / 2 - 1:.1f}" y="{y(0) - 4:.1f}" text-anchor="middle" '
                             f'fill="#999" font-size="9">n/a</text>')
                continue
            by = y(value)
            parts.append(f'<rect x="{bx:.1f}" y="{by:.1f}" width="{BAR - 2}" height="{y(0) - by:.1f}" '
                         f'fill="{colour[p]}"><title>{escape(p)} {escape(row.label)}: {value:.2f}×</title></rect>')
            parts.append(f'<text x="{bx + (BAR - 2) / 2:.1f}" y="{by - 3:.1f}" text-anchor="middle" '
                         f'font-size="8">{value:.2f}</text>')
        label = SHORT.get(row.key, row.label)
        cx = gx + len(proxies) * BAR / 2
        parts.append(f'<text x="{cx:.1f}" y="{y(0) + 16:.1f}" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{width - 20}" y2="{y(0):.1f}" stroke="#333"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def from_json(data, title=None):
    """SVG for a results JSON as bench/lib/bench.py writes it."""
    results = report.Results.from_json(data)
    proxies = data.get("settings", {}).get("proxies") or sorted({p for _, p in results.values})
    return svg(results, proxies, title or data.get("title") or "Flowgate benchmark")
