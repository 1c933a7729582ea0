"""Real SDK clients pointed at a spawned flowgated's TCP control endpoint:
boto3 (AWS Global Accelerator shape) and huaweicloudsdkelb (ELB v3 shape)."""
from __future__ import annotations

import boto3
from botocore.config import Config
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkelb.v3 import ElbClient

AWS_KEY = "AKIDFLOWGATETEST"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYFLOWGATE"
HW_AK = "HWAKFLOWGATETEST"
HW_SK = "HWSKFLOWGATETESTSECRET"
REGION = "us-west-2"


def control_section(port: int) -> dict:
    return {"listen": f"127.0.0.1:{port}", "region": REGION,
            "credentials": {"aws": [{"access_key_id": AWS_KEY, "secret_access_key": AWS_SECRET}],
                            "huawei": [{"ak": HW_AK, "sk": HW_SK}]}}


def ga_client(port: int, key: str = AWS_KEY, secret: str = AWS_SECRET, validate: bool = True, unsigned: bool = False):
    cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=validate)
    if unsigned:
        from botocore import UNSIGNED
        cfg = cfg.merge(Config(signature_version=UNSIGNED))
    return boto3.client("globalaccelerator", region_name=REGION, endpoint_url=f"http://127.0.0.1:{port}",
                        aws_access_key_id=key, aws_secret_access_key=secret, config=cfg)


def elb_client(port: int, project_id: str, ak: str = HW_AK, sk: str = HW_SK) -> ElbClient:
    http = HttpConfig.get_default_config()
    http.retry_times = 0
    http.timeout = (5, 10)
    return (ElbClient.new_builder()
            .with_credentials(BasicCredentials(ak, sk, project_id))
            .with_endpoints([f"http://127.0.0.1:{port}"])
            .with_http_config(http)
            .build())
