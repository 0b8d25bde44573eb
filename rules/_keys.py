"""Client keys and prices: ``[keys.NAME]`` and ``[prices]``."""

from typing import Any, Literal

import attrs

from ._errors import FieldError
from ._fields import at_least, field_local, non_empty, positive
from ._providers import Limits
from ._secrets import SecretRef

__all__ = ["Budget", "KeyConfig", "Price"]


@attrs.frozen
class Budget:
    """Spending cap for one client key."""

    usd: float = attrs.field(validator=positive)
    per: Literal["day", "month"]


@field_local
def _check_sha256(instance: Any, attribute: "attrs.Attribute[Any]", value: str | None) -> None:
    if value is not None and (len(value) != 64 or not all(c in "0123456789abcdef" for c in value)):
        # The value is not echoed: it stands for a key.
        raise FieldError("must be 64 lower-case hex digits (sha256 of the key)", (attribute.name,))


@attrs.frozen
class KeyConfig:
    """``[keys.NAME]``: a client key with its own allowed routes, limits and budget.

    Attributes:
        secret: The key, as a secret reference; or
        sha256: the hex SHA-256 of the key, so the config never holds it.
        routes: The routes it may use (absent: all).
        limits: Its own rpm / tpm.
        budget: Its spending cap.
    """

    secret: SecretRef | None = None
    sha256: str | None = attrs.field(default=None, validator=_check_sha256)
    routes: tuple[str, ...] | None = attrs.field(default=None, validator=non_empty)
    limits: Limits | None = None
    budget: Budget | None = None

    def __attrs_post_init__(self) -> None:
        if (self.secret is None) == (self.sha256 is None):
            raise FieldError("a key needs exactly one of secret or sha256", ())


@attrs.frozen
class Price:
    """USD per million tokens; ``cache_read`` / ``cache_write`` for prompt tokens read
    from / written to a prompt cache (unset: see ``router.traffic._cost``)."""

    input: float = attrs.field(validator=at_least(0))
    output: float = attrs.field(validator=at_least(0))
    cache_read: float | None = attrs.field(default=None, validator=at_least(0))
    cache_write: float | None = attrs.field(default=None, validator=at_least(0))
