"""Generates the known-good signature fixtures of SignatureVectorTests.swift
with the real signers (botocore SigV4Auth, huaweicloudsdkcore Signer) at a
fixed time. Run once: .venv/bin/python Tests/IntegrationTests/sdk/make_signature_vectors.py
"""
import datetime
import hashlib
import json
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

FIXED = datetime.datetime(2026, 11, 23, 4, 45, 0)


def sigv4(extra_headers=None):
    body = json.dumps({"ListenerArn": "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81/listener/0a1b2c3d",
                       "PortRanges": [{"FromPort": 8000, "ToPort": 8009}]}, separators=(",", ":"))
    req = AWSRequest(method="POST", url="http://127.0.0.1:9900/", data=body.encode(),
                     headers={"X-Amz-Target": "GlobalAccelerator_V20180706.UpdateListener",
                              "Content-Type": "application/x-amz-json-1.1", **(extra_headers or {})})
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=FIXED):
        botocore.auth.SigV4Auth(creds, "globalaccelerator", "us-west-2").add_auth(req)
    return {"method": "POST", "path": "/", "headers": [[k, v] for k, v in req.headers.items()] + [["Host", "127.0.0.1:9900"]],
            "body": body}


def sdk_hmac(method, path, query, body, content_type="application/json;charset=utf-8"):
    headers = {"Content-Type": content_type, "X-Project-Id": "ac80359381a34f04b39a333b0ea5117a",
               "User-Agent": "huaweicloud-usdk-python/3.0", "X-Sdk-Date": FIXED.strftime("%Y%m%dT%H%M%SZ")}
    req = SdkRequest(method=method, schema="http", host="127.0.0.1:9900", resource_path=path, query_params=query,
                     header_params=headers, body=body)
    Signer(BasicCredentials("HWAKEXAMPLE", "HWSKEXAMPLESECRET")).sign(req)
    return {"method": method, "path": req.uri, "headers": [[k, v] for k, v in req.header_params.items()],
            "body": body or ""}


out = {
    "sigv4": sigv4(),
    "sdk_put": sdk_hmac("PUT", "/v3/ac80359381a34f04b39a333b0ea5117a/elb/pools/161835ef-0207-4300-ab5a-cf9c48f9f5ad", [],
                        json.dumps({"pool": {"lb_algorithm": "LEAST_CONNECTIONS"}})),
    # botocore puts a client's own X-Amz-Content-Sha256 text (here upper-case hex) in the canonical request.
    "sigv4_content_sha": sigv4({"X-Amz-Content-Sha256": hashlib.sha256(json.dumps(
        {"ListenerArn": "arn:aws:globalaccelerator::123456789012:accelerator/75702d00-f682-4895-b84d-eb47d3db0c81/listener/0a1b2c3d",
         "PortRanges": [{"FromPort": 8000, "ToPort": 8009}]}, separators=(",", ":")).encode()).hexdigest().upper()}),
    # A content type that is not JSON makes the signer send X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD and sign that
    # literal instead of the body (signer.py _process_content_header, _process_hash_payload).
    "sdk_put_unsigned": sdk_hmac("PUT", "/v3/ac80359381a34f04b39a333b0ea5117a/elb/pools/161835ef-0207-4300-ab5a-cf9c48f9f5ad", [],
                                 json.dumps({"pool": {"lb_algorithm": "LEAST_CONNECTIONS"}}), content_type="text/plain"),
    "sdk_list": sdk_hmac("GET", "/v3/ac80359381a34f04b39a333b0ea5117a/elb/pools",
                         [("id", ["b", "a"]), ("protocol", "TCP"), ("limit", 10)], ""),
}
print(json.dumps(out, indent=1))
