"""Configuration errors and how they are worded.

There is exactly one public exception here, ``ConfigError``: the user's ``router.toml``
is wrong (or a secret it names cannot be read). It is the user's fault, never ours, so
it carries lines meant for a person and the CLI prints them without a traceback::

    Exception
    └── ConfigError      .errors: tuple[str, ...], one "dotted.key.path: message" each

``FieldError`` is internal: a ``ValueError`` that the schema's validators and the
loader's hooks raise, carrying the path *below* the place it was raised (the field
name, a map key), so the loader can report ``routes.chat.retries`` instead of
``routes.chat``.
"""

import json
import re
from collections.abc import Iterable, Sequence

__all__ = ["ConfigError", "FieldError", "Path", "describe", "format_path"]

#: A location in the document: table keys and list indices, outermost first.
Path = tuple[str | int, ...]

# TOML's bare keys; anything else is quoted so the printed path is a valid TOML key.
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(Exception):
    """The configuration is invalid; every problem found is listed.

    Whose fault: the operator's (the file, or a secret it references). Nothing has
    changed when it is raised: a reload keeps the old rules.

    Attributes:
        errors: One line per problem, ``"dotted.key.path: message"``, in file order
            where it is known. Lines never contain a secret's value.
    """

    def __init__(self, errors: str | Iterable[str]) -> None:
        lines = (errors,) if isinstance(errors, str) else tuple(errors)
        super().__init__(*lines)
        self.errors: tuple[str, ...] = lines

    def __str__(self) -> str:
        return "\n".join(self.errors)


class FieldError(ValueError):
    """A value is invalid; raised inside structuring, turned into a ConfigError line.

    Args:
        message: What is wrong, for a person; must not contain secret values.
        path: Keys below the point of raising (e.g. the attribute name for an attrs
            validator, which runs in ``__init__`` and so is reported at the class).
    """

    def __init__(self, message: str, path: Sequence[str | int] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path: Path = tuple(path)


def format_path(path: Path) -> str:
    """Render a path the way TOML spells it: ``routes.chat.fallback[1]``.

    Keys that are not TOML bare keys (``"sim-fast:echo"``, ``"a.b"``) are quoted.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        out += f".{key}" if out else key
    return out


def describe(value: object) -> str:
    """Show a TOML value in an error message, the way it looks in the file.

    Only for values that cannot be secrets: secret fields never call this.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"
