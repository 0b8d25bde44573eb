"""Field types and validators shared by the schema classes.

A field whose TOML spelling differs from its Python type is declared with an
``Annotated`` marker (``timeout: Duration``): the type checker sees a plain ``float``,
and the loader parses ``"60s"`` for it. The schema thus names *what* a field is and
stays free of cattrs; only the loader knows *how* text becomes a value.

Validators enforce invariants (ranges, non-empty lists) and raise `FieldError` with the
attribute's name, because attrs runs them in ``__init__`` where the loader can only see
the enclosing table.
"""

import enum
from collections.abc import Callable, Mapping, Sized
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from ._errors import FieldError
from ._units import Percentile

if TYPE_CHECKING:
    import attrs

__all__ = [
    "After",
    "all_of",
    "is_field_local",
    "field_local",
    "Duration",
    "FilePath",
    "Listen",
    "Parse",
    "Size",
    "Targets",
    "at_least",
    "at_most",
    "fraction",
    "non_empty",
    "positive",
    "positive_weights",
]


class Parse(enum.Enum):
    """How the loader reads a field's TOML value (see the module docstring)."""

    DURATION = "a duration"
    SIZE = "a size"
    AFTER = "a duration or percentile"
    LISTEN = "listen addresses"
    TARGETS = "targets"
    PATH = "a file path"
    PROXY = "a proxy"
    REDIS_URL = "a Redis URL"


#: Seconds; ``"250ms"`` / ``"5s"`` in TOML, or a number of seconds.
Duration = Annotated[float, Parse.DURATION]
#: Bytes; ``"4MiB"`` in TOML, or a number of bytes.
Size = Annotated[int, Parse.SIZE]
#: A hedge delay: a duration or a latency percentile (``"p90"``).
After = Annotated[float | Percentile, Parse.AFTER]
#: ``"HOST:PORT"`` or a list of them.
Listen = Annotated[tuple[str, ...], Parse.LISTEN]
#: A list of targets, or a table of target -> weight.
Targets = Annotated[tuple[str, ...] | Mapping[str, float], Parse.TARGETS]
#: A file's path; a relative one is relative to the config file's folder, as a
#: ``file:`` secret's is.
FilePath = Annotated[str, Parse.PATH]


Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
V = TypeVar("V", bound=Validator)

# Validators that look at their own field only. The loader also runs these right after
# structuring the field, so a bad value is reported even when a sibling field fails
# (attrs would only run them in __init__, which a failed sibling prevents).
_FIELD_LOCAL: set[Validator] = set()


def field_local(validator: V) -> V:
    """Mark a validator as using its value only (never ``instance``)."""
    _FIELD_LOCAL.add(validator)
    return validator


def is_field_local(validator: object) -> bool:
    """Whether the loader may run ``validator`` with ``instance=None``."""
    return validator in _FIELD_LOCAL


def all_of(*validators: Validator) -> Validator:
    """Combine field-local validators into one (which is field-local too)."""

    def check(instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        for validator in validators:
            validator(instance, attribute, value)

    return field_local(check)


@field_local
def positive(instance: Any, attribute: "attrs.Attribute[Any]", value: float | None) -> None:
    """Require ``value > 0`` (None passes: the field is unset)."""
    if value is not None and not value > 0:
        raise FieldError(f"must be greater than 0, got {value:g}", (attribute.name,))


def at_least(minimum: float) -> Any:
    """Require ``value >= minimum`` (None passes)."""

    def check(instance: Any, attribute: "attrs.Attribute[Any]", value: float | None) -> None:
        if value is not None and not value >= minimum:
            raise FieldError(f"must be at least {minimum:g}, got {value:g}", (attribute.name,))

    return field_local(check)


def at_most(maximum: float) -> Any:
    """Require ``value <= maximum`` (None passes)."""

    def check(instance: Any, attribute: "attrs.Attribute[Any]", value: float | None) -> None:
        if value is not None and not value <= maximum:
            raise FieldError(f"must be at most {maximum:g}, got {value:g}", (attribute.name,))

    return field_local(check)


@field_local
def fraction(instance: Any, attribute: "attrs.Attribute[Any]", value: float) -> None:
    """Require ``0 <= value <= 1``."""
    if not 0.0 <= value <= 1.0:
        raise FieldError(f"must be between 0 and 1, got {value:g}", (attribute.name,))


@field_local
def non_empty(instance: Any, attribute: "attrs.Attribute[Any]", value: Sized | None) -> None:
    """Require a list or table that is unset or has at least one entry.

    An empty list is almost always a half-finished edit, so it is refused rather than
    read as "nothing".
    """
    if value is not None and len(value) == 0:
        raise FieldError("must not be empty", (attribute.name,))


@field_local
def positive_weights(instance: Any, attribute: "attrs.Attribute[Any]", value: object) -> None:
    """Require every weight of a target -> weight table to be > 0 (lists pass)."""
    if isinstance(value, Mapping):
        for key, weight in value.items():
            if not weight > 0:
                raise FieldError(
                    f"weight must be greater than 0, got {weight:g}", (attribute.name, key)
                )
