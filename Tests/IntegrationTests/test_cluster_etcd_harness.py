"""The etcd test cluster itself (harness/etcd.py): three real members that
keep quorum with one killed, refuse writes with all down, keep their data
across restarts, and leave no process behind."""
from __future__ import annotations

import os

import pytest

from harness.etcd import etcd_cluster  # noqa: F401 (fixture)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_three_members_quorum_restart_and_teardown(etcd_cluster):  # noqa: F811
    etcd = etcd_cluster()
    assert len(etcd.endpoints) == 3 and all(etcd.pids)
    rev = etcd.put("/flowgate/t/a", "1")
    assert etcd.get("/flowgate/t/a") == b"1"

    etcd.kill(0)  # one of three lost: the other two still commit
    assert etcd.pids[0] is None
    assert etcd.put("/flowgate/t/b", "2") > rev

    etcd.kill_all()
    with pytest.raises(AssertionError, match="no member answered"):
        etcd.put("/flowgate/t/c", "3")

    etcd.restart_all()  # same data dirs: nothing acknowledged is lost
    assert etcd.get_prefix("/flowgate/t/") == {"/flowgate/t/a": b"1", "/flowgate/t/b": b"2"}

    pids = [p for p in etcd.pids if p]
    etcd.stop()
    assert pids and not any(_alive(p) for p in pids)
