"""Reads /proc: process trees, CPU time, RSS, and which loopback ports are bound.

Listening is checked in /proc/net/{tcp,udp} rather than by connecting, because a
probe connection would be taken as a test by a one-shot `iperf3 -s -1` backend.
"""
import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TCP_LISTEN = "0A"


def children_by_parent():
    """Maps each pid to the pids whose parent it is (one scan of /proc)."""
    tree = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def process_tree(root_pid):
    """root_pid and all its descendants that are alive now."""
    tree = children_by_parent()
    result, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        if os.path.exists(f"/proc/{pid}"):
            result.append(pid)
        pending.extend(tree.get(pid, []))
    return result


def user_system_seconds(pids):
    """(utime, stime) of the given processes (all their threads), in seconds."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        user += int(fields[11])  # fields 14 and 15 of proc(5)
        system += int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def cpu_seconds(pids):
    """utime + stime of the given processes (all their threads), in seconds."""
    return sum(user_system_seconds(pids))


def status_kib(pids, key):
    """Sum of one /proc/PID/status field in KiB (VmRSS, VmHWM) over the processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def _bound_ports(table, state=None):
    ports = set()
    for path in (f"/proc/net/{table}", f"/proc/net/{table}6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if state is not None and fields[3] != state:
                        continue
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


def tcp_listening_ports():
    return _bound_ports("tcp", TCP_LISTEN)


def udp_bound_ports():
    return _bound_ports("udp")
