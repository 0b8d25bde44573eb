"""Fetching remote secrets: AWS Secrets Manager and HashiCorp Vault KV v2.

Both are one HTTP request, sent with the project's HTTP client (``httpx2``) from a
trio task: nothing blocks the event loop but the AWS credential chain, which may read
files or ask the instance metadata service and so runs in a worker thread.

- ``aws-sm:NAME[#key]``: ``POST /`` with ``X-Amz-Target: secretsmanager.GetSecretValue``
  (the JSON 1.1 protocol), signed with botocore's SigV4 signer; the answer's
  ``SecretString``, or one string member of it when it is a JSON object and a ``#key``
  is given.
- ``vault:PATH#key``: ``GET {addr}/v1/{mount}/data/{PATH}`` with ``X-Vault-Token``; the
  member ``key`` of the answer's ``data.data``.

Errors are :class:`ConfigError` naming the reference and what went wrong (an HTTP
status, an AWS error type), never a value, a token or a foreign message that might
quote one.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx2
import orjson
import trio

from rules import ConfigError, SecretRef

if TYPE_CHECKING:
    from rules import AwsSecretsConfig, SecretsConfig, VaultConfig

__all__ = ["AwsSigner", "fetch_remote", "vault_token_ref"]

#: Seconds one fetch may take, connection included.
FETCH_TIMEOUT = 10.0


async def fetch_remote(
    ref: SecretRef, settings: SecretsConfig, *, vault_token: str | None, aws: AwsSigner
) -> str:
    """The value of a remote reference, checked to be sendable in a header.

    Raises:
        ConfigError: it cannot be fetched, or is not a usable key.
    """
    if ref.scheme == "vault":
        value = await _vault(ref, settings.vault, vault_token)
    else:
        value = await _aws(ref, aws)
    return ref.checked(value)


def vault_token_ref(settings: SecretsConfig) -> SecretRef | None:
    """The reference of the Vault token, if a Vault server is configured."""
    return settings.vault.token if settings.vault is not None else None


async def _vault(ref: SecretRef, vault: VaultConfig | None, token: str | None) -> str:
    if vault is None or token is None:
        raise ConfigError(f"secret {ref}: no [secrets.vault] token to read it with")
    addr = vault.addr or os.environ.get("VAULT_ADDR")
    if not addr:
        raise ConfigError(f"secret {ref}: no Vault address (secrets.vault.addr or VAULT_ADDR)")
    path = quote(ref.remote_name.strip("/"), safe="/")
    url = f"{addr.rstrip('/')}/v1/{quote(vault.mount.strip('/'), safe='/')}/data/{path}"
    headers = {"X-Vault-Token": token}
    if vault.namespace:
        headers["X-Vault-Namespace"] = vault.namespace
    status, body = await _send(ref, "GET", url, headers, b"")
    if status != 200:
        raise ConfigError(f"secret {ref}: Vault answered HTTP {status}")
    data = body.get("data", {}).get("data") if isinstance(body.get("data"), dict) else None
    return _member(ref, data, "the Vault secret")


class AwsSigner:
    """Region, endpoint and credentials for Secrets Manager, found once (the credential
    chain's refreshable credentials renew themselves)."""

    def __init__(self, settings: AwsSecretsConfig) -> None:
        self.settings = settings
        self._found: tuple[Any, str, str] | None = None

    async def request(self, ref: SecretRef, body: bytes) -> tuple[str, dict[str, str]]:
        """The endpoint and the signed headers of one GetSecretValue call."""
        from botocore.auth import SigV4Auth  # only daemons with aws-sm: pay for botocore
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import RefreshableCredentials

        if self._found is None:
            self._found = await trio.to_thread.run_sync(self._find, ref)
        credentials, region, endpoint = self._found
        if isinstance(credentials, RefreshableCredentials):  # may ask a service: a thread
            frozen = await trio.to_thread.run_sync(credentials.get_frozen_credentials)
        else:
            frozen = credentials.get_frozen_credentials()
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        }
        request = AWSRequest(method="POST", url=endpoint, data=body, headers=headers)
        SigV4Auth(frozen, "secretsmanager", region).add_auth(request)
        return endpoint, {k: str(v) for k, v in request.headers.items()}

    def _find(self, ref: SecretRef) -> tuple[Any, str, str]:
        import botocore.session

        session = botocore.session.get_session()
        region = (
            self.settings.region
            or os.environ.get("AWS_REGION")
            or session.get_config_variable("region")  # AWS_DEFAULT_REGION, the profile
        )
        if not region:
            raise ConfigError(
                f"secret {ref}: no AWS region (secrets.aws.region, AWS_REGION or the profile)"
            )
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigError(f"secret {ref}: no AWS credentials (environment or profile)")
        endpoint = (
            self.settings.endpoint
            or os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER")
            or os.environ.get("AWS_ENDPOINT_URL")
            or f"https://secretsmanager.{region}.amazonaws.com"
        )
        return credentials, region, endpoint.rstrip("/") + "/"


async def _aws(ref: SecretRef, signer: AwsSigner) -> str:
    body = orjson.dumps({"SecretId": ref.remote_name})
    url, headers = await signer.request(ref, body)
    status, answer = await _send(ref, "POST", url, headers, body)
    if status != 200:
        kind = str(answer.get("__type", "")).rpartition("#")[2] or "an error"
        raise ConfigError(f"secret {ref}: Secrets Manager answered HTTP {status} ({kind})")
    text = answer.get("SecretString")
    if not isinstance(text, str):
        raise ConfigError(f"secret {ref}: not a SecretString (binary secrets are not supported)")
    if ref.key is None:
        return text
    try:
        members = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ConfigError(f"secret {ref}: the secret is not a JSON object") from None
    return _member(ref, members, "the secret's JSON")


def _member(ref: SecretRef, data: object, where: str) -> str:
    key = ref.key or ""
    if not isinstance(data, dict):
        raise ConfigError(f"secret {ref}: {where} is not a JSON object")
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"secret {ref}: {where} has no string member {key!r}")
    return value


async def _send(
    ref: SecretRef, method: str, url: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, Any]]:
    """The status and the JSON object answered; network trouble is a ConfigError."""
    try:
        async with httpx2.AsyncClient(timeout=FETCH_TIMEOUT, trust_env=False) as client:
            response = await client.request(method, url, headers=headers, content=body)
    except httpx2.HTTPError as exc:
        # By type only: a transport's message may quote a header.
        raise ConfigError(f"secret {ref}: cannot reach the server ({type(exc).__name__})") from None
    try:
        answer = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError:
        answer = {}
    return response.status_code, answer if isinstance(answer, dict) else {}
