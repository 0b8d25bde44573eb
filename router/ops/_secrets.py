"""Secrets at start and on reload: read off the event loop, checked, kept out of logs.

- :func:`resolve_secrets` reads every secret reference of a config in worker threads,
  each within a deadline (a ``file:`` that is a FIFO with no writer would otherwise
  hang the reload, or the whole loop), and sorts what it found: values, errors
  (malformed values, unreadable references) and warnings (world-readable files).
- :func:`secrets_for` is what ``serve`` and a reload use: every problem is a
  :class:`ConfigError` naming the reference, warnings are logged, and the values join
  the log's redaction.
- :func:`protect_logs`: every log record, a dependency's included, is scrubbed of any
  piece of a known secret (its message, arguments and traceback), and the debug
  loggers of the HTTP libraries, which print header values, stay at INFO or above
  whatever the log level.
"""

from __future__ import annotations

import logging
import traceback
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import trio
from trio.lowlevel import RunVar

from rules import ConfigError, MalformedSecret, SecretRef, find_secrets

from ..upstream._redact import Redactor
from ._secret_fetch import vault_token_ref
from ._secret_store import RemoteSecrets

if TYPE_CHECKING:
    from rules import Config

__all__ = [
    "Resolution",
    "close_log_scope",
    "protect_logs",
    "resolve_secrets",
    "resolve_secrets_now",
    "secrets_for",
]

log = logging.getLogger("llm_router")

#: Seconds one secret may take to read.
READ_TIMEOUT = 5.0
#: Fields whose secret is a block of text (a PEM key), not a header value.
MULTILINE_FIELDS = frozenset({"key_file"})
#: Loggers of dependencies that print request and response headers at DEBUG.
HEADER_LOGGERS = ("hpack", "h2", "h11", "httpcore", "httpcore2", "httpx", "httpx2", "hypercorn")

# Threads stuck on a FIFO hold a token until a writer appears: a limiter of their own
# keeps them from starving the default one (the config file is read in a thread too).
# One per trio run: a token is given back through the run that lent it.
_READERS: RunVar[trio.CapacityLimiter] = RunVar("secret_readers")


def _readers() -> trio.CapacityLimiter:
    try:
        return _READERS.get()
    except LookupError:
        limiter = trio.CapacityLimiter(4)
        _READERS.set(limiter)
        return limiter


@attrs.frozen
class Resolution:
    """What reading a config's secrets found.

    Attributes:
        values: Each reference read, with its value (never printed).
        malformed: Errors that no environment fixes: a value that cannot be a key.
        unreadable: References that could not be read here (unset, missing, too slow).
        warnings: Secrets read, but worth a word (readable by every user).
    """

    values: Mapping[SecretRef, str] = attrs.field(repr=False)
    malformed: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


async def resolve_secrets(
    config: Config, *, seconds: float | None = None, remote: RemoteSecrets | None = None
) -> Resolution:
    """Read every secret reference of ``config`` in worker threads, each within
    ``seconds`` (:data:`READ_TIMEOUT` by default); then the remote ones (``aws-sm:``,
    ``vault:``) from ``remote``'s cache, or fetched (the Vault token read first)."""
    seconds = READ_TIMEOUT if seconds is None else seconds
    found = _Found()
    pending = list(found.pending(config))
    for path, ref in pending:
        if ref.remote:
            continue
        if ref.scheme == "env":  # a dict lookup: no thread, no deadline needed
            try:
                found.read(path, ref, *_read(ref, path))
            except ConfigError as exc:
                found.failed(path, exc)
            continue
        with trio.move_on_after(seconds):
            try:
                value, warning = await trio.to_thread.run_sync(
                    partial(_read, ref, path), abandon_on_cancel=True, limiter=_readers()
                )
            except ConfigError as exc:
                found.failed(path, exc)
            else:
                found.read(path, ref, value, warning)
            continue
        message = f"secret {ref}: not read within {seconds:g}s (a FIFO with no writer?)"
        found.failed(path, ConfigError(message))
    remote = RemoteSecrets() if remote is None else remote
    token_ref = vault_token_ref(config.secrets)
    token = found.values.get(token_ref) if token_ref is not None else None
    for path, ref in pending:
        if ref.remote:
            try:
                value = await remote.get(ref, config.secrets, token)
            except ConfigError as exc:
                found.failed(path, exc)
            else:
                found.read(path, ref, value, None)
    return found.result()


def resolve_secrets_now(config: Config) -> Resolution:
    """The same, read in the calling thread, without deadlines (``check``, which may run
    inside another program's event loop); remote references are not fetched."""
    found = _Found()
    for path, ref in found.pending(config):
        if ref.remote:
            continue
        try:
            value, warning = _read(ref, path)
        except ConfigError as exc:
            found.failed(path, exc)
        else:
            found.read(path, ref, value, warning)
    return found.result()


def _read(ref: SecretRef, path: str) -> tuple[str, str | None]:
    multiline = path.rpartition(".")[2] in MULTILINE_FIELDS
    return ref.resolve(multiline=multiline), ref.warning()


class _Found:
    """What reading the secrets found so far, each reference read once."""

    def __init__(self) -> None:
        self.values: dict[SecretRef, str] = {}
        self.malformed: list[str] = []
        self.unreadable: list[str] = []
        self.warnings: list[str] = []

    def pending(self, config: Config) -> Iterator[tuple[str, SecretRef]]:
        seen: set[SecretRef] = set()
        for path, ref in find_secrets(config):
            if ref not in seen:
                seen.add(ref)
                yield path, ref

    def read(self, path: str, ref: SecretRef, value: str, warning: str | None) -> None:
        self.values[ref] = value
        if warning is not None:
            self.warnings.append(f"{path}: {warning}")

    def failed(self, path: str, exc: ConfigError) -> None:
        errors = self.malformed if isinstance(exc, MalformedSecret) else self.unreadable
        errors.extend(f"{path}: {e}" for e in exc.errors)

    def result(self) -> Resolution:
        return Resolution(
            self.values, tuple(self.malformed), tuple(self.unreadable), tuple(self.warnings)
        )


async def secrets_for(
    config: Config, remote: RemoteSecrets | None = None
) -> Mapping[SecretRef, str]:
    """Every secret of ``config``, for serving it: warnings logged, values redacted from
    the log from now on. Remote ones come from ``remote``'s cache while fresh.

    Raises:
        ConfigError: a secret cannot be read, or its value cannot be a key.
    """
    found = await resolve_secrets(config, remote=remote)
    if found.malformed or found.unreadable:
        raise ConfigError((*found.malformed, *found.unreadable))
    for warning in found.warnings:
        log.warning("%s", warning)
    _remember(found.values.values())
    return found.values


class _Scope:
    """The secrets one running daemon has read: redacted from every log record while
    it runs (a reload adds the new ones; a rotated-out key stays redacted)."""

    __slots__ = ("__weakref__", "secrets")

    def __init__(self) -> None:
        self.secrets: frozenset[str] = frozenset()


# A daemon's scope lives in its task's context (reloads run in tasks it started, so
# they see it); the registry holds it weakly, so a daemon that failed before
# close_log_scope() leaves no secrets behind either.
_SCOPE: ContextVar[_Scope | None] = ContextVar("log_secrets", default=None)
_SCOPES: weakref.WeakSet[_Scope] = weakref.WeakSet()
_redactor: tuple[frozenset[str], Redactor] = (frozenset(), Redactor())


def _remember(secrets: Iterable[str]) -> None:
    scope = _SCOPE.get()
    if scope is None:
        scope = _Scope()
        _SCOPE.set(scope)
        _SCOPES.add(scope)
    scope.secrets |= frozenset(secrets)


def close_log_scope() -> None:
    """This daemon's secrets no longer need redacting (it stopped)."""
    scope = _SCOPE.get()
    if scope is not None:
        _SCOPES.discard(scope)
        _SCOPE.set(None)


def _log_redactor() -> Redactor:
    global _redactor
    secrets = frozenset().union(*(scope.secrets for scope in list(_SCOPES)))
    if secrets != _redactor[0]:
        _redactor = (secrets, Redactor(secrets))
    return _redactor[1]


_installed = False


def protect_logs() -> None:
    """Scrub every log record of secrets; keep the header-printing loggers at INFO.

    Call again when the root logger's level changes: those loggers follow it, but never
    below INFO. Record creation is wrapped (not a handler or a logger), so the scrubbing
    holds for every logger and every handler, those added later included.
    """
    global _installed
    level = max(logging.INFO, logging.getLogger().getEffectiveLevel())
    for name in HEADER_LOGGERS:
        logging.getLogger(name).setLevel(level)
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def scrubbed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        redact = _log_redactor()
        if redact:
            _scrub(record, redact)
        return record

    logging.setLogRecordFactory(scrubbed_record)


def _scrub(record: logging.LogRecord, redact: Redactor) -> None:
    """The record's message and traceback, redacted (formatted now, only if needed)."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when it formats
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        scrubbed = redact(text)
        if scrubbed != text:
            # The traceback as text, redacted; the exception itself (which holds the
            # secret) is not passed on to handlers.
            record.msg, record.args = f"{clean}\n{scrubbed}", None
            record.exc_info = record.exc_text = None
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
