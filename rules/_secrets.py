"""Secret references: ``env:NAME``, ``file:PATH``, ``cred:NAME``, and the remote
``aws-sm:NAME[#json-key]`` (AWS Secrets Manager) and ``vault:PATH#key`` (HashiCorp
Vault KV v2).

The config file never holds a key itself, only where to find it, so the file can be
shown, diffed and logged. A `SecretRef` prints as its reference; the value exists only
as the return value of `SecretRef.resolve`, and no error message ever contains it
(nor a string that failed to parse as a reference, since that may be a pasted key).

A key goes into an HTTP header: a value with surrounding whitespace or a control
character (a CRLF line end, a pasted space) is refused when it is read
(:class:`MalformedSecret`), rather than failing later inside a transport whose error
would quote it. One trailing ``\n`` of a file is not part of the key (editors add it);
anything else is. A relative ``file:`` path is relative to the config file's folder.

A remote reference is only parsed and checked here: the daemon fetches it over the
network (``router.ops``), caches it and refreshes it; `SecretRef.resolve` refuses it.
"""

import os
import re
import stat
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Literal, get_args

import attrs

from ._errors import ConfigError, FieldError

__all__ = [
    "REMOTE_SCHEMES",
    "MalformedSecret",
    "SecretRef",
    "SecretScheme",
    "config_relative",
    "find_secrets",
    "secrets_relative_to",
]

#: Where relative ``file:`` paths of the config being loaded point (its folder).
_BASE: ContextVar[str | None] = ContextVar("secret_base", default=None)


@contextmanager
def secrets_relative_to(folder: str) -> Iterator[None]:
    """References parsed inside resolve a relative ``file:`` path against ``folder``."""
    token = _BASE.set(folder)
    try:
        yield
    finally:
        _BASE.reset(token)


def config_relative(path: str) -> str:
    """``path`` as the config being parsed means it: relative to the config's folder, as a
    ``file:`` secret's path is (unchanged outside `secrets_relative_to`, or if absolute)."""
    base = _BASE.get()
    return os.path.join(base, path) if base and not os.path.isabs(path) else path


class MalformedSecret(ConfigError):
    """A secret was read but its value cannot be a key (whitespace, control characters)."""


def _malformed(value: str) -> bool:
    return value != value.strip() or any(unicodedata.category(ch) == "Cc" for ch in value)


SecretScheme = Literal["env", "file", "cred", "aws-sm", "vault"]
#: Schemes whose value lives in a secrets manager, fetched over the network.
REMOTE_SCHEMES = frozenset({"aws-sm", "vault"})
_SCHEMES: tuple[str, ...] = get_args(SecretScheme)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

NOT_A_REFERENCE = (
    "must be a secret reference (env:NAME, file:PATH, cred:NAME, aws-sm:NAME[#key]"
    " or vault:PATH#key), not a literal key"
)


def _check_name(instance: "SecretRef", _: "attrs.Attribute[str]", name: str) -> None:
    # Messages name the scheme only: a malformed reference may still contain a key.
    if instance.scheme == "env" and not _ENV_NAME.fullmatch(name):
        raise FieldError("env: needs an environment variable name (letters, digits, _)")
    if instance.scheme == "file" and not name:
        raise FieldError("file: needs a path")
    if instance.scheme == "cred" and (not name or "/" in name or name in (".", "..")):
        raise FieldError("cred: needs a credential name (as in LoadCredential=NAME:...)")
    secret, hash_, key = name.partition("#")
    if instance.scheme == "aws-sm" and (not secret or (hash_ and not key)):
        raise FieldError("aws-sm: needs a secret name or ARN, and a JSON key after # if any")
    if instance.scheme == "vault" and (not secret.strip("/") or not key):
        raise FieldError("vault: needs a path and a key: vault:PATH#key")


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
    #: The folder a relative ``file:`` path is read from (None: the working directory).
    base: str | None = attrs.field(default=None, kw_only=True)

    @classmethod
    def parse(cls, text: object) -> "SecretRef":
        """Parse ``env:NAME``, ``file:PATH``, ``cred:NAME``, ``aws-sm:NAME[#key]`` or
        ``vault:PATH#key``.

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
        base = _BASE.get() if scheme == "file" and not os.path.isabs(name) else None
        return cls(scheme, name, base=base)  # type: ignore[arg-type]  # checked just above

    def resolve(self, environ: Mapping[str, str] | None = None, *, multiline: bool = False) -> str:
        """Read the secret's value.

        Args:
            environ: Environment to read ``env:`` names and ``CREDENTIALS_DIRECTORY``
                from; ``os.environ`` when None.
            multiline: The secret is a block of text (a PEM key), not a key sent in a
                header: newlines and surrounding whitespace are kept and allowed.

        Returns:
            The secret; from a file, without one trailing ``\\n``.

        Raises:
            MalformedSecret: (a ConfigError) the value has surrounding whitespace or a
                control character; only a ``multiline`` secret may.
            ConfigError: The variable is unset or empty, or the file is unreadable or
                empty. The message names the reference, never a value.
        """
        env = os.environ if environ is None else environ
        if self.remote:
            raise ConfigError(f"secret {self}: fetched by the daemon, not read from a file")
        if self.scheme == "env":
            value = env.get(self.name, "")
            if not value:
                raise ConfigError(f"secret {self}: environment variable {self.name} is not set")
        else:
            path = self.path(env)
            try:
                # Bytes as they are: text mode would turn "\r\n" and a lone "\r" into "\n".
                value = path.read_bytes().decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                # Not chained: a UnicodeDecodeError holds the file's bytes, i.e. the secret.
                raise ConfigError(f"secret {self}: cannot read {path}: {reason}") from None
            if not multiline:
                # Editors and `echo key > file` add one newline that is not part of the
                # key; a "\r\n" (a file from Windows) or a second one is refused below.
                value = value.removesuffix("\n")
            if not value.strip():
                raise ConfigError(f"secret {self}: {path} is empty")
        return value if multiline else self.checked(value)

    def checked(self, value: str) -> str:
        """``value``, if it can be sent in a header.

        Raises:
            MalformedSecret: surrounding whitespace or a control character.
        """
        if _malformed(value):
            raise MalformedSecret(
                f"secret {self}: the value has surrounding whitespace or a control"
                " character (a CRLF line end, a stray space or newline): refused, as it"
                " cannot be sent in a header; write the key alone"
            )
        return value

    @property
    def remote(self) -> bool:
        """The value lives in a secrets manager (``aws-sm:``, ``vault:``)."""
        return self.scheme in REMOTE_SCHEMES

    @property
    def remote_name(self) -> str:
        """A remote secret's name or path, without the ``#key``."""
        return self.name.partition("#")[0]

    @property
    def key(self) -> str | None:
        """A remote secret's JSON key (after ``#``), if any."""
        return self.name.partition("#")[2] or None

    def path(self, environ: Mapping[str, str] | None = None) -> Path:
        """The file a ``file:`` or ``cred:`` secret is read from.

        Raises:
            ConfigError: ``cred:`` without ``CREDENTIALS_DIRECTORY``; or an ``env:``.
        """
        env = os.environ if environ is None else environ
        if self.scheme == "file":
            return Path(self.base or "", self.name)
        if self.scheme == "cred":
            directory = env.get("CREDENTIALS_DIRECTORY")
            if directory:
                return Path(directory, self.name)
            raise ConfigError(
                f"secret {self}: CREDENTIALS_DIRECTORY is not set"
                " (cred: needs systemd LoadCredential=)"
            )
        raise ConfigError(f"secret {self}: not a file")

    def warning(self, environ: Mapping[str, str] | None = None) -> str | None:
        """A ``file:`` secret every user of the machine may read is worth a warning."""
        if self.scheme != "file":
            return None  # systemd's credentials are private to the service
        path = self.path(environ)
        try:
            mode = path.stat().st_mode
        except OSError:
            return None  # resolving it says why
        if stat.S_ISREG(mode) and mode & stat.S_IROTH:
            return f"secret {self}: {path} is readable by every user (chmod o-r {path})"
        return None

    def __str__(self) -> str:
        return f"{self.scheme}:{self.name}"

    def __repr__(self) -> str:
        return f"SecretRef({str(self)!r})"


def find_secrets(value: object, path: str = "") -> Iterator[tuple[str, SecretRef]]:
    """Every secret reference in a config (or part of one), with its dotted key path."""
    if isinstance(value, SecretRef):
        yield path, value
    elif attrs.has(type(value)):
        for field in attrs.fields(type(value)):  # type: ignore[arg-type]  # attrs.has, above
            yield from find_secrets(getattr(value, field.name), _join(path, field.name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from find_secrets(item, _join(path, str(key)))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from find_secrets(item, f"{path}[{index}]")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
