"""`make install` with DESTDIR/PREFIX: binaries, the unit with its paths
rewritten, the example config, and an existing config left alone. Uses the
debug binaries (RELEASE_DIR) so the suite does not need a release build."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO_ROOT, default_config


def make_install(dest: Path, flowgated_bin: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "-o", "release", "-o", "setup-build", "install", f"DESTDIR={dest}",
         f"RELEASE_DIR={flowgated_bin.parent}", *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture
def installable(flowgated_bin, flowgatectl_bin):
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    if not default_config().exists():
        pytest.skip(f"{default_config()} not written yet (the foundation ships it)")
    return flowgated_bin


def test_install_into_destdir_with_prefix(installable, tmp_path):
    done = make_install(tmp_path, installable, "PREFIX=/opt/fg")
    assert done.returncode == 0, done.stderr
    for name in ("flowgated", "flowgatectl"):
        binary = tmp_path / "opt/fg/bin" / name
        assert binary.is_file() and binary.stat().st_mode & 0o777 == 0o755
    unit = (tmp_path / "lib/systemd/system/flowgated.service").read_text()
    assert "ExecStart=/opt/fg/bin/flowgated --config /etc/flowgate/flowgate.yaml\n" in unit
    assert "/usr/local/bin" not in unit
    config = tmp_path / "etc/flowgate/flowgate.yaml"
    assert config.read_bytes() == default_config().read_bytes()


def test_install_keeps_an_existing_config(installable, tmp_path):
    config = tmp_path / "etc/flowgate/flowgate.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("# the operator's own\n")
    done = make_install(tmp_path, installable)
    assert done.returncode == 0, done.stderr
    assert config.read_text() == "# the operator's own\n"
    assert (tmp_path / "usr/local/bin/flowgated").is_file()
