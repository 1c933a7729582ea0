"""The README's two commands and CI agree (issue 2): CI runs exactly the
README's test command, and the Makefile has both targets."""
from __future__ import annotations

import re
import subprocess

from harness import REPO_ROOT


def first_code_block(text: str) -> list[str]:
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README has no sh code block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_make_run_and_make_test():
    assert first_code_block((REPO_ROOT / "README.md").read_text()) == ["make run", "make test"]


def test_ci_runs_the_readme_test_command():
    lines = [l.strip() for l in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    commands = [l for l in lines if l and not l.startswith("#") and not l.startswith(("set ", "cd ", "command -v"))]
    assert commands == ["make test"]


def test_make_targets_exist():
    for target in ("run", "test", "check", "install", "bench", "clean"):
        done = subprocess.run(["make", "-n", target], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (target, done.stderr)
    dry = subprocess.run(["make", "-n", "test"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60).stdout
    assert "FLOWGATED=.build/debug/flowgated" in dry and "FLOWGATECTL=.build/debug/flowgatectl" in dry
    assert ".venv/bin/pytest -q Tests/IntegrationTests" in dry
