"""The setup script is idempotent: once run (make test ran it before pytest),
a second run installs nothing and is quick."""
from __future__ import annotations

import subprocess
import time

from harness import REPO_ROOT


def test_setup_second_run_does_nothing():
    start = time.monotonic()
    done = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "setup.sh")], capture_output=True, text=True,
                          timeout=600, cwd=REPO_ROOT)
    elapsed = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    # setup.sh logs only when it installs or creates something.
    assert done.stderr == "", done.stderr
    assert elapsed < 10, elapsed


def test_setup_rejects_unknown_option():
    done = subprocess.run(["bash", str(REPO_ROOT / ".ci" / "setup.sh"), "--frobnicate"],
                          capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert done.returncode == 2
    assert "unknown option --frobnicate" in done.stderr
