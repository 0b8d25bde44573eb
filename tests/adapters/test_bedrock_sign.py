"""BedrockAdapter.sign: SigV4 by botocore at a given time, checked against a hand-made
computation from the AWS specification (double-encoded model id in the canonical path)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.credentials import Credentials

from adapters import AuthenticationFailed, GatewayRequest, Message, UpstreamRequest
from adapters._bedrock import make_adapter

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
SETTINGS: dict[str, Any] = {
    "region": "eu-west-3",
    "base_url": None,
    "aws_access_key_id": KEY_ID,
    "aws_secret_access_key": SECRET,
    "aws_session_token": None,
    "api_key": None,
    "headers": {},
}
REQ = GatewayRequest("x", (Message("user", "hi"),))


def signed(**overrides: Any) -> UpstreamRequest:
    a = make_adapter("aws", {**SETTINGS, **overrides})
    return a.sign(a.build_request(REQ, MODEL), NOW)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def expected_authorization(up: UpstreamRequest, token: str | None = None) -> str:
    """SigV4 per the AWS docs, written out by hand (not botocore)."""
    headers = {k: v for k, v in up.headers if k != "authorization"}
    headers["host"] = "bedrock-runtime.eu-west-3.amazonaws.com"
    names = sorted(headers)
    # The path is URI-encoded again for the canonical request: "%3A" -> "%253A".
    canonical = "\n".join(
        [
            "POST",
            "/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse",
            "",
            "".join(f"{n}:{headers[n]}\n" for n in names),
            ";".join(names),
            hashlib.sha256(up.body).hexdigest(),
        ]
    )
    scope = "20250304/eu-west-3/bedrock/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            "20250304T050607Z",
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _hmac(f"AWS4{SECRET}".encode(), "20250304")
    for part in ("eu-west-3", "bedrock", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )


def test_signature_matches_an_independent_computation() -> None:
    up = signed()
    headers = dict(up.headers)
    assert headers["x-amz-date"] == "20250304T050607Z"
    assert headers["authorization"] == expected_authorization(up)
    assert "SignedHeaders=accept;content-type;host;x-amz-date," in headers["authorization"]
    assert "x-amz-security-token" not in headers
    assert up.url.endswith("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")


def test_session_token_is_sent_and_signed() -> None:
    up = signed(aws_session_token="FQoGZXIvYXdzEXAMPLE")
    headers = dict(up.headers)
    assert headers["x-amz-security-token"] == "FQoGZXIvYXdzEXAMPLE"
    assert "x-amz-security-token" in headers["authorization"].split("SignedHeaders=")[1]
    assert headers["authorization"] == expected_authorization(up)


def test_signature_depends_on_now_only_through_the_given_time() -> None:
    a = make_adapter("aws", SETTINGS)
    up = a.build_request(REQ, MODEL)
    assert a.sign(up, NOW) == a.sign(up, NOW)  # pure: no clock inside
    later = a.sign(up, NOW + timedelta(seconds=1))
    assert dict(later.headers)["x-amz-date"] == "20250304T050608Z"
    assert dict(later.headers)["authorization"] != dict(a.sign(up, NOW).headers)["authorization"]
    paris = a.sign(up, NOW.astimezone(timezone(timedelta(hours=1))))
    assert paris == a.sign(up, NOW)  # any timezone, signed in UTC
    assert a.sign(up, NOW.replace(tzinfo=None)) == a.sign(up, NOW)  # naive means UTC


def test_resigning_replaces_the_old_signature() -> None:
    a = make_adapter("aws", SETTINGS)
    once = a.sign(a.build_request(REQ, MODEL), NOW)
    twice = a.sign(once, NOW + timedelta(minutes=1))
    names = [k for k, _ in twice.headers]
    assert names.count("authorization") == 1
    assert names.count("x-amz-date") == 1
    assert twice.body == once.body


def test_credentials_object_from_settings_wins() -> None:
    creds = Credentials(KEY_ID, SECRET)
    up = signed(aws_access_key_id=None, aws_secret_access_key=None, aws_credentials=creds)
    assert dict(up.headers)["authorization"] == expected_authorization(up)


def test_probe_is_signed_too() -> None:
    a = make_adapter("aws", SETTINGS)
    probe = a.sign(a.probe_request(), NOW)
    auth = dict(probe.headers)["authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20250304/eu-west-3/bedrock/")


def test_api_key_requests_are_not_signed() -> None:
    a = make_adapter("aws", {**SETTINGS, "api_key": "brk-key"})
    up = a.build_request(REQ, MODEL)
    assert a.sign(up, NOW) is up


def test_no_credentials_is_an_authentication_error_without_secrets() -> None:
    a = make_adapter("aws", {**SETTINGS, "aws_secret_access_key": None})
    with pytest.raises(AuthenticationFailed, match="no AWS credentials") as info:
        a.sign(a.build_request(REQ, MODEL), NOW)
    assert KEY_ID not in str(info.value)


def test_refreshable_credentials_are_signed_off_the_event_loop() -> None:
    from datetime import UTC, datetime, timedelta

    from botocore.credentials import Credentials, RefreshableCredentials

    from adapters._bedrock import make_adapter

    def refresh() -> dict[str, str]:
        expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        return {"access_key": "AKID", "secret_key": "s", "token": "t", "expiry_time": expiry}

    chain = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    assert make_adapter("b", {"region": "us-east-1", "aws_credentials": chain}).sign_may_block
    static = Credentials("AKID", "secret")
    assert not make_adapter("b", {"region": "us-east-1", "aws_credentials": static}).sign_may_block
