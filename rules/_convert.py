"""The cattrs converter that turns parsed TOML into schema objects, strictly.

cattrs' defaults are lenient in ways a config language must not be: it turns ``5`` into
``"5"`` for a ``str`` field, iterates a string into a tuple of characters, and reduces
validator messages to "invalid value". The hooks here accept exactly the TOML types a
field can be written as, and the loader turns cattrs' exception tree into
``(path, message)`` pairs with the validators' own messages.
"""

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Annotated, Any, Literal, TypeVar, cast, get_args, get_origin

import attrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, override
from cattrs.preconf.tomlkit import make_converter

from ._connection import ProxySetting, parse_proxy
from ._errors import FieldError, describe
from ._fields import Parse, is_field_local
from ._providers import ProviderConfig, ProviderKinds
from ._secrets import SecretRef, config_relative
from ._shared import RedisURL, SharedState
from ._units import parse_duration, parse_percentile, parse_size
from ._when import WhenRule, parse_condition

__all__ = ["structure"]

T = TypeVar("T")
Hook = Callable[[Any, Any], Any]

converter = make_converter(forbid_extra_keys=True)
_LITERAL: Any = Literal  # compared with get_origin(); mypy sees the two as unrelated


def _kind_of(value: object) -> str:
    # For fields that may hold a secret by mistake: name the type, never the value.
    if isinstance(value, bool):
        return "true/false"
    names = {str: "a string", int: "an integer", float: "a number", list: "a list"}
    return names.get(type(value), "a table" if isinstance(value, Mapping) else "a value")


# --- scalars: no coercion between TOML types ---------------------------------------


def _str(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise FieldError(f"expected a string, got {describe(value)}")
    return str(value)


def _int(value: object, _: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"expected an integer, got {describe(value)}")
    return int(value)


def _float(value: object, _: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(f"expected a number, got {describe(value)}")
    return float(value)


def _bool(value: object, _: object) -> bool:
    if not isinstance(value, bool):
        raise FieldError(f"expected true or false, got {describe(value)}")
    return value


def _literal(value: object, type_: Any) -> object:
    allowed = get_args(type_)
    if value not in allowed or isinstance(value, bool):
        shown = ", ".join(str(a) for a in allowed)
        if isinstance(value, str):
            raise FieldError(f"unknown value {describe(value)} (allowed: {shown})")
        raise FieldError(f"expected one of {shown}, got {describe(value)}")
    return value


# --- values with units and other textual forms --------------------------------------


def _duration(value: object, _: object) -> float:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise FieldError(str(exc)) from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)  # a TOML number is seconds
    raise FieldError(f'expected a duration like "30s", got {describe(value)}')


def _size(value: object, _: object) -> int:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        try:
            return parse_size(value)
        except ValueError as exc:
            raise FieldError(str(exc)) from None
    raise FieldError(f'expected a size like "4MiB", got {describe(value)}')


def _after(value: object, _: object) -> object:
    if isinstance(value, str):
        try:
            return parse_percentile(value) if value.startswith("p") else parse_duration(value)
        except ValueError:
            raise FieldError(f"{describe(value)} is not a duration or percentile") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise FieldError(
        f'expected a duration like "250ms" or a percentile like "p90", got {describe(value)}'
    )


def _listen_address(value: object, _: object) -> str:
    text = _str(value, None)
    if text.startswith("fd:"):
        if not text[3:].isdigit():
            raise FieldError(f"{describe(text)} is not fd:N (an inherited file descriptor)")
        return text
    host, colon, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]") and len(host) > 2
    if (
        not colon
        or not host
        or (":" in host and not bracketed)
        or not port.isdigit()
        or not 0 <= int(port) <= 65535
    ):
        raise FieldError(f"{describe(text)} is not HOST:PORT, [IPv6]:PORT or fd:N")
    return text


def _listen(value: object, type_: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_listen_address(value, None),)
    if not isinstance(value, list):
        raise FieldError(f'expected "HOST:PORT" or a list of them, got {_kind_of(value)}')
    addresses: tuple[str, ...] = _sequence_of(_listen_address, str)(value, type_)
    return addresses


def _targets(value: object, _: object) -> object:
    if isinstance(value, list):
        return converter.structure(value, tuple[str, ...])
    if isinstance(value, Mapping):
        return converter.structure(value, _WEIGHTS)
    raise FieldError(
        f"expected a list of targets or a table of target = weight, got {_kind_of(value)}"
    )


def _path(value: object, _: object) -> str:
    text = _str(value, None)
    if not text:
        raise FieldError("must not be empty")
    return config_relative(text)


def _proxy(value: object, _: object) -> ProxySetting:
    return parse_proxy(value)


# typed Any: mypy wants a concrete class where cattrs takes any type form.
_WEIGHTS: Any = Mapping[str, float]

_PARSERS: dict[Parse, Hook] = {
    Parse.DURATION: _duration,
    Parse.SIZE: _size,
    Parse.AFTER: _after,
    Parse.LISTEN: _listen,
    Parse.TARGETS: _targets,
    Parse.PATH: _path,
    Parse.PROXY: _proxy,
    Parse.REDIS_URL: lambda value, _: RedisURL.parse(value),
}


def _parse_marker(type_: Any) -> Parse | None:
    if get_origin(type_) is not Annotated:
        return None
    return next((m for m in type_.__metadata__ if isinstance(m, Parse)), None)


def _secret(value: object, _: object) -> SecretRef:
    return SecretRef.parse(value)


def _when_rule(value: object, _: object) -> WhenRule:
    # By hand, not generated: the TOML key ``if`` is a Python keyword.
    if not isinstance(value, Mapping):
        raise FieldError(f'expected a table {{ if = "...", use = "..." }}, got {_kind_of(value)}')
    problems = [FieldError("unknown key", (k,)) for k in value if k not in ("if", "use")]
    problems += [FieldError("required key missing", (k,)) for k in ("if", "use") if k not in value]
    text, use = value.get("if"), value.get("use")
    for key, item in (("if", text), ("use", use)):
        if key in value and not isinstance(item, str):
            problems.append(FieldError(f"expected a string, got {describe(item)}", (key,)))
    if isinstance(text, str):
        try:
            condition = parse_condition(text)
        except ValueError as exc:
            problems.append(FieldError(str(exc), ("if",)))
    if problems:
        raise problems[0] if len(problems) == 1 else ExceptionGroup("invalid rule", problems)
    assert isinstance(text, str)
    assert isinstance(use, str)
    return WhenRule(text, condition, use)


# --- containers: a list is a list, a table is a table -------------------------------


def _sequence_of(element: Hook, element_type: Any) -> Hook:
    def structure_list(value: object, type_: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise FieldError(f"expected a list, got {_kind_of(value)}")
        items, errors = [], []
        for index, item in enumerate(value):
            try:
                items.append(element(item, element_type))
            except Exception as exc:
                exc.add_note(IterableValidationNote(f"@ index {index}", index, element_type))
                errors.append(exc)
        if errors:
            raise IterableValidationError("invalid list", errors, type_)
        return tuple(items)

    return structure_list


def _is_homogeneous_tuple(type_: Any) -> bool:
    args = get_args(type_)
    return get_origin(type_) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_hook(type_: Any) -> Hook:
    element_type = get_args(type_)[0]
    return _sequence_of(converter.get_structure_hook(element_type), element_type)


def _is_mapping(type_: Any) -> bool:
    return get_origin(type_) in (Mapping, dict)


def _mapping_hook(type_: Any) -> Hook:
    value_type = get_args(type_)[1]
    element = converter.get_structure_hook(value_type)

    def structure_table(value: object, _: object) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise FieldError(f"expected a table, got {_kind_of(value)}")
        items, errors = {}, []
        for key, item in value.items():
            try:
                items[str(key)] = element(item, value_type)
            except Exception as exc:
                exc.add_note(IterableValidationNote(f"@ key {key!r}", key, value_type))
                errors.append(exc)
        if errors:
            raise IterableValidationError("invalid table", errors, type_)
        return items

    return structure_table


def _validated(attribute: "attrs.Attribute[Any]") -> Hook:
    """The field's hook, followed by its field-local validator (see ``_fields``)."""
    structure_field = converter.get_structure_hook(attribute.type)
    validator = attribute.validator

    def hook(value: object, type_: Any) -> Any:
        result = structure_field(value, type_)
        try:
            validator(None, attribute, result)  # type: ignore[misc]  # checked: not None
        except FieldError as exc:
            # The validator names its field; here the caller's note names it already.
            raise FieldError(exc.message, exc.path[1:]) from None
        return result

    return hook


def _class_hook(cls: type[T]) -> Hook:
    overrides: dict[str, Any] = {
        a.name: override(struct_hook=_validated(a))
        for a in attrs.fields(cast("Any", cls))
        if a.validator is not None and is_field_local(a.validator)
    }
    generated = make_dict_structure_fn(cls, converter, **overrides)

    def structure_class(value: object, _: object) -> T:
        if not isinstance(value, Mapping):
            raise FieldError(f"expected a table, got {_kind_of(value)}")
        return generated(value, cls)

    return structure_class


def _shared_state(value: object, _: object) -> SharedState:
    # A URL alone, or the table with the password and timeout.
    if isinstance(value, str):
        return SharedState(RedisURL.parse(value))
    structure_table: Hook = _class_hook(SharedState)
    result: SharedState = structure_table(value, SharedState)
    return result


# The kinds of the `structure` call under way: the converter is shared, its hooks are
# built once, and the kinds are a parameter of the call (a plugin adds its own).
_kinds: ContextVar[ProviderKinds] = ContextVar("_kinds")


def _provider(value: object, _: object) -> ProviderConfig:
    # Dispatch on `kind` to the config class the caller's `kinds` names.
    kinds = _kinds.get({})
    known = ", ".join(sorted(kinds))
    if not isinstance(value, Mapping):
        raise FieldError(f"expected a table, got {_kind_of(value)}")
    if "kind" not in value:
        raise FieldError(f"required key missing (known kinds: {known})", ("kind",))
    kind = value["kind"]
    if not isinstance(kind, str) or kind not in kinds:
        raise FieldError(f"unknown provider kind {describe(kind)} (known: {known})", ("kind",))
    return converter.structure(value, kinds[kind])


def _configure() -> None:
    for type_, hook in ((str, _str), (int, _int), (float, _float), (bool, _bool)):
        converter.register_structure_hook(type_, hook)
    # Later registrations take precedence over earlier ones and over cattrs' own.
    converter.register_structure_hook_func(lambda t: get_origin(t) is _LITERAL, _literal)
    converter.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_hook)
    converter.register_structure_hook_factory(_is_mapping, _mapping_hook)
    converter.register_structure_hook_factory(attrs.has, _class_hook)
    converter.register_structure_hook_func(lambda t: t is SecretRef, _secret)
    converter.register_structure_hook_func(lambda t: t is ProviderConfig, _provider)
    converter.register_structure_hook_func(lambda t: t is SharedState, _shared_state)
    converter.register_structure_hook_func(lambda t: t is WhenRule, _when_rule)
    converter.register_structure_hook_factory(
        lambda t: _parse_marker(t) is not None,
        lambda t: _PARSERS[_parse_marker(t)],  # type: ignore[index]  # not None: see predicate
    )


_configure()


def structure(data: Mapping[str, Any], cls: type[T], kinds: ProviderKinds) -> T:
    """Structure parsed TOML into ``cls`` (raises cattrs' exception tree on errors).

    ``kinds`` maps each provider ``kind`` to its config class.
    """
    token = _kinds.set(kinds)
    try:
        return converter.structure(data, cls)
    finally:
        _kinds.reset(token)
