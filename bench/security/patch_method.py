"""Issue 11 item 5 (unsupported methods): what `PATCH` gets.

`PATCH /v3/{project}/elb/pools/x` (ELB shape) and `PATCH /` (AWS shape) on
the control Unix socket: status, Content-Type and the start of the body.

    python bench/security/patch_method.py --flowgated .build/release/flowgated
"""
from __future__ import annotations

import common as c


def main(args) -> None:
    (data_port,) = c.ports(1)
    cfg = c.single_pool_config([data_port], [c.member(c.ports(1)[0])], workers=1)
    d = c.daemon(args, cfg)
    project = d.config["project_id"]
    for label, path, body in (("9a patch-elb", f"/v3/{project}/elb/pools/x", b'{"pool": {}}'),
                              ("9b patch-aws", "/", b"{}")):
        status, headers, answer = d.request("PATCH", path, body=body, headers={"Content-Type": "application/json"})
        text = " ".join(answer.decode("utf-8", "replace").split())
        c.result(label, path=path, status=status, content_type=repr(headers.get("content-type", "-")),
                 body=repr(text[:140]))


if __name__ == "__main__":
    c.run("9 patch", main, c.parse_args(__doc__, time_limit=60))
