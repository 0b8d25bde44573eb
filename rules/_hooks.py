"""``[hooks.NAME]``: content hooks that routes run on requests and answers.

Three kinds, told apart by ``kind`` as provider blocks are:

- ``regex``: patterns to block, or to redact with a replacement;
- ``pii``: e-mail addresses, phone numbers, card numbers (Luhn-checked), IBANs
  (mod-97-checked) and API-key-shaped strings, by category (:mod:`._pii`);
- ``plugin``: a Python callable, named ``module:attribute`` or by its name in the
  ``llm_router.hooks`` entry-point group.

A route lists the hooks it runs (``hooks = ["pii"]``; ``[defaults] hooks`` for routes
that do not say and for direct ``provider:model`` requests). What they do at run time
is :mod:`._scan`; this module is the schema, and checks what it can at load: a pattern
that does not compile, an unknown category, a callable that cannot be loaded.
"""

import importlib
import re
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Literal

import attrs

from ._convert import converter
from ._errors import FieldError, describe
from ._fields import all_of, at_least, field_local, non_empty, positive
from ._pii import CATEGORIES, PIICategory

__all__ = [
    "ENTRY_POINT_GROUP",
    "HookConfig",
    "HookDirection",
    "PIIHookConfig",
    "PluginHookConfig",
    "RegexHookConfig",
    "load_callable",
]

#: Where installed packages offer hook callables by name.
ENTRY_POINT_GROUP = "llm_router.hooks"

HookDirection = Literal["request", "response"]
HookAction = Literal["block", "redact"]
_BOTH: tuple[HookDirection, ...] = ("request", "response")
_WINDOW = 128


@field_local
def _check_patterns(
    instance: Any, attribute: "attrs.Attribute[Any]", value: tuple[str, ...]
) -> None:
    for index, pattern in enumerate(value):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise FieldError(
                f"{describe(pattern)} is not a regular expression: {exc}", (attribute.name, index)
            ) from None


@field_local
def _check_callable(instance: Any, attribute: "attrs.Attribute[Any]", value: str) -> None:
    try:
        load_callable(value)
    except LookupError as exc:
        raise FieldError(str(exc), (attribute.name,)) from None


def load_callable(name: str) -> Callable[..., Any]:
    """The callable ``name`` means: ``module:attribute`` (dots go down attributes), or
    an entry point of that name in `ENTRY_POINT_GROUP`.

    Raises:
        LookupError: it cannot be found or imported, or is not callable (the message
            names it and why).
    """
    target: Any
    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            target = importlib.import_module(module)
            for part in attribute.split("."):
                target = getattr(target, part)
        except Exception as exc:  # an import runs arbitrary code; report any failure
            raise LookupError(
                f"cannot load {describe(name)}: {type(exc).__name__}: {exc}"
            ) from None
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise LookupError(
                f'no entry point {describe(name)} in the "{ENTRY_POINT_GROUP}" group '
                '(or write "module:callable")'
            )
        try:
            target = found[0].load()
        except Exception as exc:
            raise LookupError(
                f"cannot load {describe(name)}: {type(exc).__name__}: {exc}"
            ) from None
    if not callable(target):
        raise LookupError(f"{describe(name)} is not callable")
    return target  # type: ignore[no-any-return]  # checked callable above


@attrs.frozen(kw_only=True)
class RegexHookConfig:
    """``kind = "regex"``: block or redact what ``patterns`` match.

    Attributes:
        patterns: Python regular expressions.
        action: ``redact`` (replace each match with ``replacement``) or ``block``.
        ignore_case: Match regardless of case.
        on: Where the hook runs: ``request``, ``response`` or both.
        window: Characters of a stream held back, so that a match split across two
            chunks is still seen (a pattern's longest match, up to this).
    """

    kind: Literal["regex"] = "regex"
    patterns: tuple[str, ...] = attrs.field(validator=all_of(non_empty, _check_patterns))
    action: HookAction = "redact"
    replacement: str = "[REDACTED]"
    ignore_case: bool = False
    on: tuple[HookDirection, ...] = attrs.field(default=_BOTH, validator=non_empty)
    window: int = attrs.field(default=_WINDOW, validator=positive)


@attrs.frozen(kw_only=True)
class PIIHookConfig:
    """``kind = "pii"``: personal data and secrets (see :mod:`._pii`).

    Attributes:
        categories: What to find: ``email``, ``phone``, ``card``, ``iban``, ``api_key``
            (absent: all of them).
        action: ``redact`` or ``block``.
        replacement: What replaces a match; absent: its category's label (``[EMAIL]``).
        on, window: as for ``regex``.
    """

    kind: Literal["pii"] = "pii"
    categories: tuple[PIICategory, ...] = attrs.field(default=CATEGORIES, validator=non_empty)
    action: HookAction = "redact"
    replacement: str | None = None
    on: tuple[HookDirection, ...] = attrs.field(default=_BOTH, validator=non_empty)
    window: int = attrs.field(default=_WINDOW, validator=positive)


@attrs.frozen(kw_only=True)
class PluginHookConfig:
    """``kind = "plugin"``: a Python callable ``f(text, *, direction) -> str | None``.

    It gets each text (``direction`` is ``"request"`` or ``"response"``) and returns
    the text to send on (the same or rewritten), or None to block.

    Attributes:
        callable: ``module:attribute``, or a name in the ``llm_router.hooks``
            entry-point group.
        on: as for ``regex``.
        window: Characters of a stream held back before the callable sees them (0:
            it is called on each piece of text as it comes).
    """

    kind: Literal["plugin"] = "plugin"
    callable: str = attrs.field(validator=_check_callable)
    on: tuple[HookDirection, ...] = attrs.field(default=_BOTH, validator=non_empty)
    window: int = attrs.field(default=0, validator=at_least(0))


HookConfig = RegexHookConfig | PIIHookConfig | PluginHookConfig
_KINDS: Mapping[str, type[Any]] = {
    "regex": RegexHookConfig,
    "pii": PIIHookConfig,
    "plugin": PluginHookConfig,
}


def _hook(value: object, _: object) -> HookConfig:
    known = ", ".join(_KINDS)
    if not isinstance(value, Mapping):
        raise FieldError(f"expected a table, got {describe(value)}")
    kind = value.get("kind")
    if kind is None:
        raise FieldError(f"required key missing (kinds: {known})", ("kind",))
    if not isinstance(kind, str) or kind not in _KINDS:
        raise FieldError(f"unknown hook kind {describe(kind)} (known: {known})", ("kind",))
    result: HookConfig = converter.structure(value, _KINDS[kind])
    return result


converter.register_structure_hook_func(lambda t: t == HookConfig, _hook)
