"""Plugin references: ``"package.module:callable"``, imported when the config loads.

A reference that does not import, or names something that is not callable, is a config
error at its key path, so ``llm-router check`` finds it before a request does.
"""

import importlib
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from ._errors import FieldError
from ._fields import field_local

__all__ = ["check_plugin", "load_plugin"]

_REF = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@cache
def load_plugin(ref: str) -> Callable[..., Any]:
    """The callable ``ref`` names (imported once per reference).

    Raises:
        ValueError: ``ref`` is malformed, does not import, or is not callable.
    """
    if not _REF.fullmatch(ref):
        raise ValueError(f'"{ref}" is not a plugin reference like "package.module:function"')
    module_name, _, attribute = ref.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the plugin's own import is the user's to fix
        raise ValueError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ValueError(f"{module_name} has no {attribute}")
        found = getattr(found, part)
    if not callable(found):
        raise ValueError(f"{ref} is not callable")
    return found  # type: ignore[no-any-return]


@field_local
def check_plugin(instance: object, attribute: "Any", value: str | None) -> None:
    """Validator: ``value`` (when set) names a callable that imports."""
    if value is None:
        return
    try:
        load_plugin(value)
    except ValueError as exc:
        raise FieldError(str(exc), (attribute.name,)) from None
