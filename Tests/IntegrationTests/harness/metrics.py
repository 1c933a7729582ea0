"""Prometheus text-format helpers for GET /metrics tests."""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict
    value: float


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse_metrics(text: str) -> list[Sample]:
    """Every sample line of a scrape (comments and blank lines skipped).
    Raises ValueError on a line that is not a sample."""
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line.strip())
        if not m:
            raise ValueError(f"line {number} is not a sample: {line!r}")
        name, labels_text, value = m.groups()
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = _LABEL.match(labels_text, pos)
                if not lm:
                    raise ValueError(f"line {number}: bad labels {labels_text!r}")
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        samples.append(Sample(name, labels, float(value)))
    return samples


def metric_sum(samples: list[Sample], name: str, **labels: str) -> float:
    """Sum of the samples named `name` whose labels include `labels`."""
    return sum(s.value for s in samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def promtool_path() -> str | None:
    return shutil.which("promtool")


def promtool_check(text: str) -> subprocess.CompletedProcess:
    """`promtool check metrics` on a scrape (lint: exit 0 clean, 3 lint
    problems, 1 parse error); output in stdout/stderr."""
    exe = promtool_path()
    if exe is None:
        raise FileNotFoundError("promtool not installed (make test installs the prometheus package)")
    return subprocess.run([exe, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
