"""A route's ``validate``: what an answer must be for the route to accept it.

``validate = "json"``: the answer's text parses as JSON. ``validate = { schema =
"file:PATH" }``: it parses and matches the JSON Schema in that file (read at load,
relative to the config's folder; checked to be a valid schema, with jsonschema).
An answer that fails counts as its target's failure: the route retries or falls back
as after a server error (``invalid_response``).

`AnswerCheck` is the compiled form; a client's own ``response_format`` schema makes one
too (:func:`schema_check`). Pure: text in, a problem or None out.
"""

import json
from collections.abc import Mapping
from typing import Any

import attrs
import jsonschema
from jsonschema.exceptions import SchemaError

from ._convert import converter
from ._errors import FieldError, describe
from ._secrets import config_relative

__all__ = ["AnswerCheck", "ValidateConfig", "compile_check", "schema_check"]


@attrs.frozen
class ValidateConfig:
    """``validate``: ``"json"``, or a JSON Schema (``schema = "file:PATH"``).

    Attributes:
        schema: The ``file:PATH`` reference as written (None: JSON only).
        document: The schema it names, as read at load.
    """

    schema: str | None = None
    document: Mapping[str, Any] | None = attrs.field(default=None, eq=False, repr=False)


def _read_schema(reference: object) -> tuple[str, Mapping[str, Any]]:
    if not isinstance(reference, str) or not reference.startswith("file:"):
        raise FieldError(f'expected "file:PATH", got {describe(reference)}', ("schema",))
    path = config_relative(reference[5:])
    try:
        with open(path, "rb") as file:
            document = json.load(file)
    except OSError as exc:
        raise FieldError(f"cannot read {path}: {exc.strerror}", ("schema",)) from None
    except ValueError as exc:
        raise FieldError(f"{path} is not JSON: {exc}", ("schema",)) from None
    if not isinstance(document, dict):
        raise FieldError(f"{path} is not a JSON Schema (an object)", ("schema",))
    try:
        jsonschema.validators.validator_for(document).check_schema(document)
    except SchemaError as exc:
        raise FieldError(f"{path} is not a valid JSON Schema: {exc.message}", ("schema",)) from None
    return reference, document


def _validate(value: object, _: object) -> ValidateConfig:
    if value == "json":
        return ValidateConfig()
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"schema"})
        if unknown:
            raise FieldError("unknown key", (unknown[0],))
        if "schema" not in value:
            raise FieldError("required key missing", ("schema",))
        reference, document = _read_schema(value["schema"])
        return ValidateConfig(reference, document)
    raise FieldError(f'expected "json" or {{ schema = "file:PATH" }}, got {describe(value)}')


converter.register_structure_hook(ValidateConfig, _validate)


@attrs.frozen(eq=False)
class AnswerCheck:
    """Checks an answer's text: JSON, and the schema when there is one."""

    validator: Any = None  # a jsonschema validator, or None for JSON only

    def problem(self, text: str) -> str | None:
        """What is wrong with ``text`` as an answer, or None when it passes."""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return f"the answer is not JSON ({exc.msg} at character {exc.pos})"
        if self.validator is None:
            return None
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(value))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path) or "the top"
        return f"the answer does not match its schema at {where}: {error.message}"


def compile_check(config: ValidateConfig) -> AnswerCheck:
    """The run-time form of a route's ``validate``."""
    if config.document is None:
        return AnswerCheck()
    return AnswerCheck(jsonschema.validators.validator_for(config.document)(config.document))


def schema_check(response_format: object) -> AnswerCheck | None:
    """The check a client's ``response_format`` asks for: its ``json_schema``'s
    ``schema`` (None when it asks none, or the schema is not valid: the upstream says
    what is wrong with it)."""
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, dict):
        return None
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError:
        return None
    return AnswerCheck(cls(schema))
