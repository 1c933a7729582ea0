"""The ELB v3 pool API driven by a second real client, unchanged:
otcextensions' `vlb` proxy on openstacksdk (docs/api.md §7: it sends
`X-Auth-Token: notused` and no signature, so it works where unsigned requests
are allowed: here a loopback TCP endpoint with `allow_unsigned: true`)."""
from __future__ import annotations

import pytest

openstack = pytest.importorskip("openstack")
otc_sdk = pytest.importorskip("otcextensions.sdk")

from openstack import exceptions as os_exc  # noqa: E402

from harness import PROJECT_ID, config, listener, member, pool, tcp_exchange  # noqa: E402

# openstacksdk warns about its own deprecated internals on every call.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


class OtcSetup:
    def __init__(self, daemon, tcp_backend, port_range):
        backend = tcp_backend("echo", mode="echo")
        self.ports = port_range(1)
        (control_port,) = port_range(1, proto=("tcp",))
        self.pool = pool([member(backend.port)], name="web")
        cfg = config([listener(self.ports, self.pool["id"])], [self.pool], workers=1,
                     control={"listen": f"127.0.0.1:{control_port}", "allow_unsigned": True})
        self.daemon = daemon(cfg)
        self.conn = openstack.connection.Connection(
            auth_type="none", elbv3_endpoint_override=f"http://127.0.0.1:{control_port}/v3/{PROJECT_ID}")
        otc_sdk.register_otc_extensions(self.conn)


@pytest.fixture
def otc(daemon, tcp_backend, port_range):
    return OtcSetup(daemon, tcp_backend, port_range)


def test_otcextensions_lists_updates_and_shows_a_pool(otc):
    pools = list(otc.conn.vlb.pools())
    assert [(p.id, p.name, p.lb_algorithm) for p in pools] == [(otc.pool["id"], "web", "ROUND_ROBIN")]
    updated = otc.conn.vlb.update_pool(pools[0], lb_algorithm="LEAST_CONNECTIONS", name="renamed",
                                       slow_start={"enable": True, "duration": 60},
                                       session_persistence={"type": "SOURCE_IP", "persistence_timeout": 5})
    assert (updated.id, updated.name, updated.lb_algorithm) == (otc.pool["id"], "renamed", "LEAST_CONNECTIONS")
    assert updated.slow_start == {"enable": True, "duration": 60}
    assert updated.session_persistence["type"] == "SOURCE_IP"
    assert updated.session_persistence["persistence_timeout"] == 5
    shown = otc.conn.vlb.get_pool(otc.pool["id"])
    assert (shown.name, shown.lb_algorithm) == ("renamed", "LEAST_CONNECTIONS")
    assert tcp_exchange(otc.ports[0], b"still forwarding") == b"still forwarding"


def test_otcextensions_sees_validation_errors_and_nothing_changes(otc):
    with pytest.raises(os_exc.BadRequestException) as info:
        otc.conn.vlb.update_pool(otc.pool["id"], lb_algorithm="WEIGHTED")
    assert info.value.status_code == 400 and "ELB.8902" in str(info.value)
    with pytest.raises(os_exc.BadRequestException):
        otc.conn.vlb.update_pool(otc.pool["id"], slow_start={"enable": True, "duration": 29})
    shown = otc.conn.vlb.get_pool(otc.pool["id"])
    assert (shown.lb_algorithm, shown.slow_start["enable"]) == ("ROUND_ROBIN", False)


def test_otcextensions_unknown_pool_is_not_found(otc):
    with pytest.raises(os_exc.NotFoundException) as info:
        otc.conn.vlb.get_pool("00000000-0000-4000-8000-000000000000")
    assert info.value.status_code == 404 and "ELB.8904" in str(info.value)
