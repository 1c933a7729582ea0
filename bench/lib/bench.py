#!/usr/bin/env python3
"""Flowgate benchmark: direct vs flowgated vs HAProxy (plain and splice) vs nginx
on loopback, alternating proxies and rotating their order each round.

Run through bench/run.sh, which installs the tools and builds flowgated.
Settings come from the environment (see bench/README.md).
"""
import datetime
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chart  # noqa: E402
import loads  # noqa: E402
import procfs  # noqa: E402
import report  # noqa: E402
from backends import Backends, BackendError  # noqa: E402
from procs import ProcessRegistry  # noqa: E402
from proxies import ProxyStartError, make_proxies  # noqa: E402
from services import PROXY_NAMES, PortPlan  # noqa: E402

BENCH_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
REPO_DIR = os.path.dirname(BENCH_DIR)
PROXY_CPU = 1
PAUSE_BETWEEN_TESTS = 0.5


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


class Settings:
    def __init__(self, env):
        self.rounds = int(env.get("ROUNDS", "3"))
        self.duration = int(env.get("DURATION", "5"))
        self.pin = env.get("PIN", "0") == "1"
        self.port_base = int(env.get("PORT_BASE", "15000"))
        self.tests = _list(env.get("ONLY"), loads.ALL_TESTS)
        self.proxies = _list(env.get("PROXIES"), PROXY_NAMES)
        self.flowgated = env.get("FLOWGATED", "")
        self.flowgated_unavailable = env.get("FLOWGATED_UNAVAILABLE", "")
        self.workdir = env.get("BENCH_WORKDIR") or f"/tmp/flowgate-bench.{os.getpid()}"
        self.pid_file = env.get("BENCH_PID_FILE") or os.path.join(self.workdir, "pids")
        for test in self.tests:
            if test not in loads.ALL_TESTS:
                raise SystemExit(f"bench: unknown test {test!r} in ONLY; known: {' '.join(loads.ALL_TESTS)}")
        if self.rounds < 1 or self.duration < 1:
            raise SystemExit("bench: ROUNDS and DURATION must be at least 1")


def _list(text, default):
    if not text:
        return list(default)
    return [item for item in text.replace(",", " ").split() if item]


class Context:
    def __init__(self, settings, registry, backends):
        self.duration = settings.duration
        self.registry = registry
        self.backends = backends


def _command_output(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_lines(settings):
    model = ""
    for line in _command_output(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    versions = {
        "haproxy": _command_output(["haproxy", "-v"]).splitlines()[:1],
        "nginx": [subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()],
        "iperf3": _command_output(["iperf3", "-v"]).splitlines()[:1],
        "wrk": [_command_output(["wrk", "-v"]).splitlines()[0] if _command_output(["wrk", "-v"]) else ""],
        "sockperf": _command_output(["sockperf", "--version"]).splitlines()[:1],
    }
    commit = _command_output(["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"])
    dirty = " (with uncommitted changes)" if _command_output(["git", "-C", REPO_DIR, "status", "--porcelain"]) else ""
    settings_text = (f"ROUNDS={settings.rounds} DURATION={settings.duration} PIN={int(settings.pin)} "
                     f"ONLY={','.join(settings.tests)} PROXIES={','.join(settings.proxies)}")
    return [
        f"# Flowgate benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {os.cpu_count()} CPUs ({model or platform.processor() or 'unknown model'}), "
        f"Linux {platform.release()}, loopback only",
        f"- Command: `{settings_text} bench/run.sh`",
        f"- flowgated: {settings.flowgated or 'not built'} at commit {commit}{dirty}; "
        "every proxy runs 2 workers (flowgated `workers: 2`, HAProxy `nbthread 2`, nginx `worker_processes 2`)",
        "- Tools: " + "; ".join(f"{name}: {' '.join(v).strip()}" for name, v in versions.items()),
        f"- Each test runs {settings.duration} s; {settings.rounds} rounds; proxies alternate within each test "
        "and their order rotates each round",
    ]


def check_ports_free(ports):
    busy = [p for p in ports if p in procfs.tcp_listening_ports() or p in procfs.udp_bound_ports()]
    if busy:
        raise SystemExit(f"bench: ports {busy} are already in use; choose another PORT_BASE")


def run_round(round_index, settings, proxies, ctx, results):
    names = settings.proxies
    shift = round_index % len(names)
    order = names[shift:] + names[:shift]
    log(f"round {round_index + 1}/{settings.rounds}: order {' '.join(order)}")
    round_dir = os.path.join(settings.workdir, f"round-{round_index + 1}")
    started = []
    for name in order:
        proxy = proxies[name]
        try:
            proxy.start(os.path.join(round_dir, name), PROXY_CPU)
        except ProxyStartError as error:
            log(f"{name}: failed to start: {error}")
            for test in settings.tests:
                results.fail(test, name, f"{name} did not start: {error}")
            proxy.stop()
            continue
        started.append(name)
        if name != "direct":
            results.add(round_index, name, {"rss_start": procfs.status_kib(proxy.pids(), "VmRSS") / 1024})
    try:
        for test in settings.tests:
            if test == "mem":
                continue
            function, needs_udp = loads.TESTS[test]
            for name in order:
                proxy = proxies[name]
                if needs_udp and not proxy.supports_udp():
                    if getattr(proxy, "udp_failure", None):
                        results.fail(test, name, proxy.udp_failure)
                    else:
                        results.not_applicable.add((test, name))
                    continue
                if test in loads.HTTP_MODE_TESTS and not proxy.supports_http_mode():
                    results.not_applicable.add((test, name))
                    continue
                if name not in started:
                    continue
                if not proxy.alive():
                    results.fail(test, name, f"{name} exited during the run: see {proxy.log_path}")
                    continue
                pids = proxy.pids()
                cpu_before = procfs.cpu_seconds(pids)
                try:
                    figures = function(ctx, proxy)
                except (loads.LoadError, BackendError) as error:
                    log(f"{test} {name}: failed: {error}")
                    results.fail(test, name, f"{test} through {name}: {error}")
                    continue
                finally:
                    time.sleep(PAUSE_BETWEEN_TESTS)
                results.add(round_index, name, figures)
                shown = ", ".join(f"{k}={v:.2f}" for k, v in figures.items())
                if name != "direct":
                    cpu = (procfs.cpu_seconds(pids) - cpu_before) / settings.duration * 100
                    results.add_cpu(round_index, name, test, cpu)
                    shown += f", cpu={cpu:.0f}%"
                log(f"{test} {name}: {shown}")
        if "mem" in settings.tests:
            for name in order:
                proxy = proxies[name]
                if name == "direct":
                    results.not_applicable.add(("mem", name))
                    continue
                if name not in started or not proxy.alive():
                    continue
                try:
                    figures = loads.idle_connection_memory(
                        ctx, proxy, lambda p=proxy: procfs.status_kib(p.pids(), "VmRSS"))
                except loads.LoadError as error:
                    log(f"mem {name}: failed: {error}")
                    results.fail("mem", name, f"idle connections through {name}: {error}")
                    continue
                results.add(round_index, name, figures)
                log(f"mem {name}: " + ", ".join(f"{k}={v:.2f}" for k, v in figures.items()))
        for name in started:
            if name != "direct" and proxies[name].alive():
                results.add(round_index, name, {"rss_peak": procfs.status_kib(proxies[name].pids(), "VmHWM") / 1024})
    finally:
        for name in started:
            proxies[name].stop()


def main():
    settings = Settings(os.environ)
    os.makedirs(settings.workdir, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    registry = ProcessRegistry(settings.pid_file, settings.pin)

    def on_signal(signum, _frame):
        raise SystemExit(f"bench: stopped by signal {signum}")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    ports = PortPlan(settings.port_base)
    check_ports_free(ports.all_ports(settings.proxies))
    proxies = make_proxies(settings.proxies, ports, registry, settings.flowgated, settings.flowgated_unavailable)
    results = report.Results()
    backends = Backends(registry, ports, settings.workdir)
    began = time.monotonic()
    header = machine_lines(settings)
    try:
        backends.start()
        ctx = Context(settings, registry, backends)
        for round_index in range(settings.rounds):
            run_round(round_index, settings, proxies, ctx, results)
    finally:
        backends.close()
        registry.stop_all()
    elapsed = time.monotonic() - began
    header.append(f"- Wall time of the run: {elapsed / 60:.1f} min")
    text = report.markdown(results, settings.proxies, header)
    print(text)
    out_dir = os.path.join(BENCH_DIR, "results")
    os.makedirs(out_dir, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    with open(os.path.join(out_dir, f"{stamp}.md"), "w") as f:
        f.write(text)
    title = header[0].lstrip("# ") + (f", commit {commit}" if (commit := _command_output(
        ["git", "-C", REPO_DIR, "rev-parse", "--short", "HEAD"])) else "")
    data = {"settings": vars(settings), "elapsed_seconds": elapsed, "title": title, **results.to_json()}
    with open(os.path.join(out_dir, f"{stamp}.json"), "w") as f:
        json.dump(data, f, indent=1)
    # The same table as a chart (bench/lib/chart.py; bench/chart.py redraws it from the JSON).
    with open(os.path.join(out_dir, f"{stamp}.svg"), "w") as f:
        f.write(chart.svg(results, settings.proxies, title))
    log(f"wrote bench/results/{stamp}.md, .json and .svg ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
