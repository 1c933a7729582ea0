"""Every process the benchmark starts, so that all of them end with it.

Each child gets its own session (process group == its pid), so stopping it
signals that group by the pid we started: nginx workers and anything a tool
forks go with their parent, and nothing we did not start is touched. The pids
are also written to a file that bench/run.sh's EXIT trap reads, in case this
interpreter itself is killed.
"""
import os
import signal
import subprocess
import sys
import time


class ProcessRegistry:
    def __init__(self, pid_file, pin):
        self.pid_file = pid_file
        self.pin = pin
        self.live = {}  # pid -> (name, Popen)

    def _write_pid_file(self):
        tmp = self.pid_file + ".tmp"
        with open(tmp, "w") as f:
            for pid in self.live:
                f.write(f"{pid}\n")
        os.replace(tmp, self.pid_file)

    def _argv(self, argv, cpu):
        if self.pin and cpu is not None:
            return ["taskset", "-c", str(cpu)] + list(argv)
        return list(argv)

    def start(self, name, argv, cpu=None, log_path=None, env=None):
        """Starts a long-running process; its output goes to log_path."""
        out = open(log_path or os.devnull, "ab")
        try:
            proc = subprocess.Popen(self._argv(argv, cpu), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, env=env)
        finally:
            out.close()
        self.live[proc.pid] = (name, proc)
        self._write_pid_file()
        return proc

    def run(self, name, argv, seconds, cpu=None):
        """Runs a bounded command to completion: returns (exit code, stdout+stderr text).

        Bounded twice: coreutils `timeout` inside, and a kill of the group here
        if that did not end it 5 s later.
        """
        bounded = ["timeout", "-k", "2", str(int(seconds))] + self._argv(argv, cpu)
        proc = subprocess.Popen(bounded, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.live[proc.pid] = (name, proc)
        self._write_pid_file()
        try:
            out, _ = proc.communicate(timeout=seconds + 5)
        except subprocess.TimeoutExpired:
            self.stop(proc, grace=1)
            out, _ = proc.communicate()
        finally:
            self.live.pop(proc.pid, None)
            self._write_pid_file()
        return proc.returncode, out.decode("utf-8", "replace")

    def stop(self, proc, grace=3.0):
        """SIGTERM to the process group, SIGKILL after `grace` seconds."""
        pgid = proc.pid
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                proc.poll()
                if not _group_alive(pgid):
                    break
                time.sleep(0.05)
            else:
                continue
            break
        proc.poll()
        if proc.returncode is None:
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        self.live.pop(proc.pid, None)
        self._write_pid_file()

    def stop_all(self):
        for pid, (name, proc) in list(self.live.items()):
            try:
                self.stop(proc, grace=2.0)
            except Exception as error:  # keep stopping the others
                print(f"bench: could not stop {name} pid {pid}: {error}", file=sys.stderr)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
