"""Secret references: ``env:NAME``, ``file:PATH`` and ``cred:NAME``.

The config file never holds a key itself, only where to find it, so the file can be
shown, diffed and logged. A `SecretRef` prints as its reference; the value exists only
as the return value of `SecretRef.resolve`, and no error message ever contains it
(nor a string that failed to parse as a reference, since that may be a pasted key).
"""

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, get_args

import attrs

from ._errors import ConfigError, FieldError

__all__ = ["SecretRef", "SecretScheme"]

SecretScheme = Literal["env", "file", "cred"]
_SCHEMES: tuple[str, ...] = get_args(SecretScheme)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

NOT_A_REFERENCE = "must be a secret reference (env:NAME, file:PATH or cred:NAME), not a literal key"


def _check_name(instance: "SecretRef", _: "attrs.Attribute[str]", name: str) -> None:
    # Messages name the scheme only: a malformed reference may still contain a key.
    if instance.scheme == "env" and not _ENV_NAME.fullmatch(name):
        raise FieldError("env: needs an environment variable name (letters, digits, _)")
    if instance.scheme == "file" and not name:
        raise FieldError("file: needs a path")
    if instance.scheme == "cred" and (not name or "/" in name or name in (".", "..")):
        raise FieldError("cred: needs a credential name (as in LoadCredential=NAME:...)")


@attrs.frozen(repr=False)
class SecretRef:
    """Where a secret lives; prints as the reference, never as the value.

    Attributes:
        scheme: ``env`` (environment variable), ``file`` (a file's contents, trailing
            newline stripped) or ``cred`` (a systemd credential, the file
            ``$CREDENTIALS_DIRECTORY/NAME`` provided by ``LoadCredential=``).
        name: The variable name, path or credential name.
    """

    scheme: SecretScheme = attrs.field(validator=attrs.validators.in_(_SCHEMES))
    name: str = attrs.field(validator=_check_name)

    @classmethod
    def parse(cls, text: object) -> "SecretRef":
        """Parse ``env:NAME``, ``file:PATH`` or ``cred:NAME``.

        Raises:
            FieldError: (a ``ValueError``) the text is not a reference; the message
                does not repeat the text.
        """
        if not isinstance(text, str):
            kinds = {bool: "true/false", int: "an integer", float: "a number", list: "a list"}
            kind = kinds.get(type(text), "a table")
            raise FieldError(NOT_A_REFERENCE.replace("a literal key", kind))
        scheme, colon, name = text.partition(":")
        if not colon or scheme not in _SCHEMES:
            raise FieldError(NOT_A_REFERENCE)
        return cls(scheme, name)  # type: ignore[arg-type]  # checked just above

    def resolve(self, environ: Mapping[str, str] | None = None) -> str:
        """Read the secret's value.

        Args:
            environ: Environment to read ``env:`` names and ``CREDENTIALS_DIRECTORY``
                from; ``os.environ`` when None.

        Returns:
            The secret, without a trailing newline.

        Raises:
            ConfigError: The variable is unset or empty, or the file is unreadable or
                empty. The message names the reference, never a value.
        """
        env = os.environ if environ is None else environ
        if self.scheme == "env":
            value = env.get(self.name, "")
            if not value:
                raise ConfigError(f"secret {self}: environment variable {self.name} is not set")
            return value
        if self.scheme == "file":
            path = Path(self.name)
        else:
            directory = env.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise ConfigError(
                    f"secret {self}: CREDENTIALS_DIRECTORY is not set"
                    " (cred: needs systemd LoadCredential=)"
                )
            path = Path(directory, self.name)
        try:
            # Editors and `echo key > file` add a newline that is not part of the key.
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            # Not chained: a UnicodeDecodeError holds the file's bytes, i.e. the secret.
            raise ConfigError(f"secret {self}: cannot read {path}: {reason}") from None
        if not value:
            raise ConfigError(f"secret {self}: {path} is empty")
        return value

    def __str__(self) -> str:
        return f"{self.scheme}:{self.name}"

    def __repr__(self) -> str:
        return f"SecretRef({str(self)!r})"
