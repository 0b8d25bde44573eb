"""Fake secrets managers on loopback: AWS Secrets Manager and HashiCorp Vault KV v2.

- :class:`FakeSecretsManager` speaks the JSON 1.1 protocol: ``POST /`` with
  ``X-Amz-Target: secretsmanager.GetSecretValue`` and a ``{"SecretId": ...}`` body,
  answered with ``{"ARN", "Name", "SecretString", "VersionId", ...}``; an unknown id is
  a 400 ``ResourceNotFoundException``. It checks that the request is SigV4-signed (the
  ``Authorization`` header's shape) and records each one.
- :class:`FakeVault` answers ``GET /v1/{mount}/data/{path}`` with the KV v2 envelope
  ``{"data": {"data": {...}, "metadata": {...}}}``; a wrong ``X-Vault-Token`` is a 403
  ``{"errors": ["permission denied"]}``, an unknown path a 404 ``{"errors": []}``.

Either fails every request while :attr:`down` is set (a 500), for refresh failures.
"""

from __future__ import annotations

import re
from typing import Any

import attrs
import orjson

__all__ = ["SIGV4", "FakeSecretsManager", "FakeVault", "Seen"]

#: The Authorization header of a SigV4-signed Secrets Manager request.
SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Z0-9]+)/(?P<date>\d{8})/(?P<region>[a-z0-9-]+)"
    r"/secretsmanager/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+),"
    r" Signature=(?P<signature>[0-9a-f]{64})"
)


@attrs.define
class Seen:
    """One request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Fake:
    def __init__(self) -> None:
        self.url = ""
        self.received: list[Seen] = []
        self.down = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        seen = Seen(scope["method"], scope["path"], headers, body)
        self.received.append(seen)
        status, answer = (500, {"errors": ["down"]}) if self.down else self.answer(seen)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError


class FakeSecretsManager(_Fake):
    """Secrets Manager: :attr:`secrets` maps a SecretId to its SecretString."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[str, str] = {}

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        target = seen.headers.get("x-amz-target")
        if seen.method != "POST" or seen.path != "/" or target != "secretsmanager.GetSecretValue":
            return 400, {"__type": "UnknownOperationException"}
        if not SIGV4.fullmatch(seen.headers.get("authorization", "")):
            return 400, {"__type": "IncompleteSignatureException"}
        if seen.headers.get("content-type") != "application/x-amz-json-1.1":
            return 400, {"__type": "SerializationException"}
        secret_id = orjson.loads(seen.body).get("SecretId")
        if secret_id not in self.secrets:
            return 400, {
                "__type": "ResourceNotFoundException",
                "message": "Secrets Manager can't find the specified secret.",
            }
        return 200, {
            "ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret_id}-AbCdEf",
            "Name": secret_id,
            "SecretString": self.secrets[secret_id],
            "VersionId": "01234567-89ab-cdef-0123-456789abcdef",
            "VersionStages": ["AWSCURRENT"],
            "CreatedDate": 1.7e9,
        }


class FakeVault(_Fake):
    """Vault KV v2: :attr:`secrets` maps ``mount/path`` to its key/value data."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.secrets: dict[str, dict[str, str]] = {}

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        if seen.headers.get("x-vault-token") != self.token:
            return 403, {"errors": ["permission denied"]}
        mount, sep, path = seen.path.removeprefix("/v1/").partition("/data/")
        key = f"{mount}/{path}"
        if seen.method != "GET" or not sep or key not in self.secrets:
            return 404, {"errors": []}
        return 200, {
            "request_id": "b5f3c1e2-0000-4000-8000-000000000000",
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": {
                "data": self.secrets[key],
                "metadata": {"created_time": "2026-01-01T00:00:00Z", "version": 1},
            },
        }
