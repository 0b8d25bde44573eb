"""``[secrets]``: how remote secret references are fetched and how long a value lasts.

``aws-sm:`` and ``vault:`` references are fetched by the daemon, cached for ``ttl`` and
refreshed in the background; a failed refresh keeps the value in force. The tables here
say where the secrets managers are; a config without remote references needs none.
"""

import re
from typing import Any

import attrs

from ._errors import FieldError
from ._fields import Duration, non_empty, positive
from ._secrets import SecretRef, find_secrets

__all__ = ["AwsSecretsConfig", "SecretsConfig", "VaultConfig", "check_remote_secrets"]

_PART = re.compile(r"\[(\d+)\]|[^.\[\]]+")


def _check_url(instance: Any, attribute: "attrs.Attribute[Any]", value: str | None) -> None:
    if value is not None and not value.startswith(("http://", "https://")):
        # Not echoed: a URL may carry credentials.
        raise FieldError("must be an http:// or https:// URL", (attribute.name,))


@attrs.frozen
class VaultConfig:
    """``[secrets.vault]``: a HashiCorp Vault server with a KV version 2 engine.

    Attributes:
        addr: The server's URL (``https://vault.example:8200``); absent: ``$VAULT_ADDR``.
        token: The Vault token, itself a secret reference (``env:VAULT_TOKEN``,
            ``file:...``, ``cred:...``); sent as ``X-Vault-Token``.
        mount: Where the KV v2 engine is mounted; ``vault:PATH#key`` reads
            ``GET {addr}/v1/{mount}/data/{PATH}``.
        namespace: Vault Enterprise namespace (``X-Vault-Namespace``), if any.
    """

    token: SecretRef = attrs.field()
    addr: str | None = attrs.field(default=None, validator=_check_url)
    mount: str = attrs.field(default="secret", validator=non_empty)
    namespace: str | None = None

    @token.validator
    def _local_token(self, attribute: "attrs.Attribute[Any]", value: SecretRef) -> None:
        if value.remote:
            raise FieldError("the Vault token must be env:, file: or cred:", (attribute.name,))


@attrs.frozen
class AwsSecretsConfig:
    """``[secrets.aws]``: AWS Secrets Manager.

    Attributes:
        region: The region; absent: the usual AWS configuration (``AWS_REGION``,
            ``AWS_DEFAULT_REGION``, the profile).
        endpoint: Another endpoint URL (a VPC endpoint, a test server); absent:
            ``$AWS_ENDPOINT_URL_SECRETS_MANAGER``, ``$AWS_ENDPOINT_URL``, else the
            region's public endpoint.
    """

    region: str | None = None
    endpoint: str | None = attrs.field(default=None, validator=_check_url)


@attrs.frozen
class SecretsConfig:
    """``[secrets]``: remote secret references.

    Attributes:
        ttl: How long a fetched value is used before it is fetched again.
        vault: The Vault server, needed by ``vault:`` references.
        aws: AWS Secrets Manager settings (all optional).
    """

    ttl: Duration = attrs.field(default=300.0, validator=positive)
    vault: VaultConfig | None = None
    aws: AwsSecretsConfig = attrs.field(factory=AwsSecretsConfig)


def check_remote_secrets(
    config: Any, attribute: "attrs.Attribute[Any]", value: SecretsConfig
) -> None:
    """A ``vault:`` reference needs ``[secrets.vault]`` (reported at the reference)."""
    if value.vault is not None:
        return
    for path, ref in find_secrets(config):
        if ref.scheme == "vault":
            parts = [int(m[1]) if m[1] else m[0] for m in _PART.finditer(path)]
            raise FieldError("a vault: reference needs a [secrets.vault] table", parts)
