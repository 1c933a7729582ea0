#!/usr/bin/env python3
"""Redraws a benchmark run's chart from its JSON results:

    python3 bench/chart.py bench/results/<timestamp>.json [-o OUT.svg] [--title TEXT]

Writes <timestamp>.svg next to the JSON unless -o names another file. The
drawing is bench/lib/chart.py (the same code `make bench` runs).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import chart  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", help="a bench/results/*.json file")
    ap.add_argument("-o", "--output", help="SVG file to write (default: the JSON's name with .svg)")
    ap.add_argument("--title", help="chart title (default: the run's own)")
    args = ap.parse_args()
    with open(args.results) as f:
        data = json.load(f)
    out = args.output or os.path.splitext(args.results)[0] + ".svg"
    with open(out, "w") as f:
        f.write(chart.from_json(data, args.title))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
