"""Read ``router.toml``: TOML syntax, then the schema, then cross-references.

Every stage reports all the problems it finds as one `ConfigError`, one line each,
sorted in the order their keys appear in the file, so ``llm-router check`` reads like a
list of edits to make from top to bottom.
"""

import os
import re
import tomllib
from collections.abc import Mapping
from typing import Any

import tomlkit
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from tomlkit.exceptions import ParseError, TOMLKitError

from ._compile import check_references
from ._convert import structure
from ._errors import ConfigError, FieldError, Path, format_path
from ._providers import ProviderKinds
from ._schema import Config
from ._secrets import secrets_relative_to

__all__ = ["load_config", "parse_config"]

# tomlkit appends the position to its message; we print the position first instead.
_POSITION = re.compile(r" at line \d+ col \d+$")


def load_config(path: str | os.PathLike[str], *, kinds: ProviderKinds) -> Config:
    """Read and validate a config file.

    ``kinds`` maps each provider ``kind`` to its config class (``adapters`` holds the
    registry: ``load_config(path, kinds=adapters.provider_kinds())``).

    A relative ``file:`` secret path is relative to the file's folder.

    Raises:
        ConfigError: The file cannot be read, or is invalid (every problem listed).
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            raw = file.read()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 (byte {exc.start})") from None
    with secrets_relative_to(os.path.dirname(os.path.abspath(source))):
        return parse_config(text, source, kinds=kinds)


def parse_config(text: str, source: str = "router.toml", *, kinds: ProviderKinds) -> Config:
    """Parse and validate config text.

    Args:
        text: The TOML document.
        source: The file name that syntax errors are reported against.
        kinds: Provider ``kind`` -> its config class; a block of any other kind is an
            error.

    Returns:
        The validated config; `compile_routes` cannot fail on it.

    Raises:
        ConfigError: A syntax error (naming its line), or every schema and reference
            problem found, each as ``"dotted.key.path: message"``.
    """
    try:
        data = tomlkit.parse(text).unwrap()
    except ParseError as exc:
        message = _POSITION.sub("", str(exc))
        raise ConfigError(f"{source}: line {exc.line}, column {exc.col}: {message}") from None
    except TOMLKitError as exc:  # e.g. a key defined twice: tomlkit gives no position
        raise ConfigError(f"{source}: {_locate(text)}{exc}") from None

    errors: list[tuple[Path, str]] = []
    config: Config | None = None
    try:
        config = structure(data, Config, kinds)
    except Exception as exc:
        errors = collect_errors(exc)
        # Config's own check runs only once its tables are valid; say it now as well,
        # so one run of `check` lists everything.
        if not data.get("routes") and (("routes",), _NO_ROUTES) not in errors:
            errors.append((("routes",), _NO_ROUTES))
    if config is not None:
        errors = check_references(config)
    if errors:
        raise ConfigError(_in_file_order(data, errors))
    assert config is not None
    return config


_NO_ROUTES = "at least one route is required"
_TOMLLIB_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def _locate(text: str) -> str:
    """Find where a document tomlkit rejected without a position goes wrong.

    The standard library's parser reports a position for every error (in its message,
    on Python 3.11), so ask it; return "" when it finds none.
    """
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOMLLIB_POSITION.search(str(exc))
        if match:
            return f"line {match[1]}, column {match[2]}: "
    return ""


def _in_file_order(data: Mapping[str, Any], errors: list[tuple[Path, str]]) -> list[str]:
    """Sort errors by where their key first appears; a missing key sorts with its table."""
    order: dict[Path, int] = {}

    def number(value: object, path: Path) -> None:
        order[path] = len(order)
        if isinstance(value, Mapping):
            for key, item in value.items():
                number(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                number(item, (*path, index))

    number(data, ())

    def position(path: Path) -> int:
        while path not in order:
            path = path[:-1]
        # A missing top-level table ("routes") is reported after everything in the file.
        return order[path] if path else len(order)

    unique = list(dict.fromkeys(errors))
    unique.sort(key=lambda error: position(error[0]))
    return [f"{format_path(path)}: {message}" if path else message for path, message in unique]


def collect_errors(exc: BaseException, path: Path = ()) -> list[tuple[Path, str]]:
    """Flatten a structuring failure into ``(path, message)`` pairs.

    This walks the tree the way ``cattrs.transform_error`` does, but keeps each path as
    a tuple of keys (so it can be quoted per key and sorted in file order) and uses the
    messages of our own `FieldError`.
    """
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        found = [e for sub, note in with_notes for e in collect_errors(sub, (*path, note.name))]
        return found + [e for sub in without for e in collect_errors(sub, path)]
    if isinstance(exc, IterableValidationError):
        with_index, without = exc.group_exceptions()
        found = [e for sub, n in with_index for e in collect_errors(sub, (*path, n.index))]
        return found + [e for sub in without for e in collect_errors(sub, path)]
    if isinstance(exc, ForbiddenExtraKeysError):
        return [((*path, key), "unknown key") for key in sorted(exc.extra_fields)]
    if isinstance(exc, FieldError):
        return [((*path, *exc.path), exc.message)]
    if isinstance(exc, BaseExceptionGroup):
        return [e for sub in exc.exceptions for e in collect_errors(sub, path)]
    if isinstance(exc, KeyError):
        return [(path, "required key missing")]
    # Not expected from the hooks above; say what it was rather than crash `check`.
    return [(path, f"invalid value ({type(exc).__name__}: {exc})")]
