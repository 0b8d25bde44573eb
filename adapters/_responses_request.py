"""A client's OpenAI Responses request -> ours (the ``POST /v1/responses`` ingress).

The Responses API is served statelessly by any chat target: its input items become
chat messages, its function tools chat tools, ``text.format`` the chat
``response_format``. What needs state on the server (``previous_response_id``,
``conversation``, ``background``, stored prompts) is refused with 400
``unsupported_parameter`` naming the field. What needs OpenAI's own servers (built-in
tools such as ``web_search``) and any field not listed here has no unified form: the
body travels with the request (``raw``), OpenAI's own API takes it as it is, and every
other target refuses it naming the field: nothing is dropped without the client
knowing. Decisions where the formats do not line up:

* ``instructions`` becomes a leading system message.
* Input items become chat messages as :mod:`._responses_input` says.
* ``max_output_tokens`` counts reasoning tokens too: it travels as
  ``max_completion_tokens``, the chat name with that meaning.
* ``reasoning.effort`` becomes ``reasoning_effort``; ``reasoning.summary`` only asks
  for a summary where one exists, and chat targets produce none.
* ``store`` is accepted whatever its value, and nothing is stored (the answer says
  ``"store": false``).

Answers and streams are :mod:`._responses_response`. Pure functions over parsed JSON.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import InvalidRequest, UnsupportedParameter
from ._openai_request import client_body, number_param
from ._passthrough import RESPONSES
from ._responses_input import input_from_wire
from ._types import GatewayRequest, Message, Tool, WireBody

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["responses_request_from_wire"]

#: Fields that need state kept on the server, which a stateless gateway cannot serve.
_STATEFUL = {
    "previous_response_id": "it continues a response stored on the server",
    "conversation": "it continues a conversation stored on the server",
    "prompt": "it names a prompt template stored on the server",
    "background": "a background response is stored on the server and polled",
    "context_management": "it compacts a conversation stored on the server",
}
#: Fields passed on unchanged under their Chat Completions name (same meaning there).
_PASSED = ("user", "safety_identifier", "prompt_cache_key", "service_tier")
#: Fields taken whatever their value, since they change nothing in the answer.
_HARMLESS = frozenset({"model", "store", "stream", "stream_options"})
#: ``include`` values served: chat targets give no reasoning items, so their encrypted
#: content is trivially all there (stateless clients ask for it on every request).
_INCLUDABLE = ("reasoning.encrypted_content",)
_TOOL_CHOICES = frozenset({"none", "auto", "required"})
_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
_SUMMARIES = frozenset({"auto", "concise", "detailed"})


def responses_request_from_wire(body: Any) -> GatewayRequest:
    """A client's parsed Responses API body -> GatewayRequest, the body itself riding
    along (``raw``) for OpenAI's own API, which takes it as it is (passthrough).

    What has no unified form (a built-in tool, ``truncation``, an ``include`` value) is
    left out of the unified request and named in ``raw.untranslated``: a target that
    cannot take the body as it is refuses the request naming it, never drops it.

    Raises:
        InvalidRequest: naming the offending parameter (``UnsupportedParameter`` for
            what needs state kept on the server).
    """
    body, _ = client_body(body)
    _refuse_stateful(body)
    untranslated: list[str] = []
    current = body
    while True:
        try:
            req = _translated(current)
        except UnsupportedParameter as exc:
            reduced = _without(current, exc.param)
            if reduced is None or len(untranslated) >= _MAX_UNTRANSLATED:
                raise
            untranslated.append(exc.param or "")
            current = reduced
            continue
        return attrs.evolve(req, raw=WireBody(RESPONSES, body, tuple(untranslated)))


#: How many untranslatable parts one body may have before it is refused outright.
_MAX_UNTRANSLATED = 32
_INDEXED = re.compile(r"^(input|tools)\[(\d+)\]")


def _without(body: dict[str, Any], param: str | None) -> dict[str, Any] | None:
    """``body`` less the part ``param`` names (a list item of ``input`` or ``tools``,
    else the top-level field), or None when there is no such part to leave out."""
    if not param:
        return None
    indexed = _INDEXED.match(param)
    if indexed is not None:
        name, index = indexed.group(1), int(indexed.group(2))
        items = body.get(name)
        if not isinstance(items, list) or index >= len(items):
            return None
        rest = items[:index] + items[index + 1 :]
        if name == "input" and not rest:
            return {**body, "input": ""}  # nothing translatable left: an empty turn
        return {**body, name: rest}
    name = re.split(r"[.\[]", param, maxsplit=1)[0]
    if name not in body or name == "model":
        return None
    return {k: v for k, v in body.items() if k != name}


def _refuse_stateful(fields: Mapping[str, Any]) -> None:
    """What needs state kept on the server: refused whatever the target."""
    for name, why in _STATEFUL.items():
        if name in fields and fields[name] is not None and fields[name] is not False:
            raise UnsupportedParameter(
                f"'{name}' is not supported: {why}, and this gateway keeps no state "
                "(send the whole conversation in 'input' instead)",
                param=name,
            )


def _translated(body: dict[str, Any]) -> GatewayRequest:
    """The unified request for ``body``; UnsupportedParameter for the first part of it
    that has no unified form."""
    body, model = client_body(body)
    fields = {k: v for k, v in body.items() if v is not None}  # null: not given
    echo: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    _refuse_unserved(fields)
    messages: list[Message] = []
    instructions = fields.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("'instructions' must be a string", param="instructions")
        echo["instructions"] = instructions
        messages.append(Message("system", instructions))
    messages.extend(input_from_wire(fields.get("input")))
    stream = fields.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    if not isinstance(fields.get("stream_options", {}), dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    store = fields.get("store", False)
    if not isinstance(store, bool):
        raise InvalidRequest("'store' must be a boolean", param="store")
    limit = fields.get("max_output_tokens")
    if limit is not None:
        if type(limit) is not int or limit < 1:
            raise InvalidRequest(
                "'max_output_tokens' must be a positive integer", param="max_output_tokens"
            )
        echo["max_output_tokens"] = limit
    raw_tools = fields.get("tools", [])
    if not isinstance(raw_tools, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    tools = tuple(_tool_from_wire(t, i) for i, t in enumerate(raw_tools))
    echo["tools"] = [_tool_to_echo(t) for t in tools]
    tool_choice = _tool_choice_from_wire(fields.get("tool_choice"))
    echo["tool_choice"] = fields.get("tool_choice", "auto")
    parallel = fields.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        raise InvalidRequest("'parallel_tool_calls' must be a boolean", param="parallel_tool_calls")
    echo["parallel_tool_calls"] = parallel
    if tools and "parallel_tool_calls" in fields:
        extra["parallel_tool_calls"] = parallel  # chat refuses it without tools
    echo["text"] = _text_from_wire(fields.get("text"), extra)
    reasoning = _reasoning_from_wire(fields.get("reasoning"), extra)
    if reasoning is not None:
        echo["reasoning"] = reasoning
    metadata = fields.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise InvalidRequest("'metadata' must be an object of strings", param="metadata")
        echo["metadata"] = metadata
    for name in _PASSED:
        if name in fields:
            if not isinstance(fields[name], str):
                raise InvalidRequest(f"'{name}' must be a string", param=name)
            extra[name] = echo[name] = fields[name]
    temperature = number_param(fields, "temperature")
    top_p = number_param(fields, "top_p")
    echo["temperature"] = temperature
    echo["top_p"] = top_p
    return GatewayRequest(
        model=model,
        messages=tuple(messages),
        stream=stream,
        include_usage=True,  # a Responses answer always carries its usage
        temperature=temperature,
        top_p=top_p,
        max_tokens=limit,
        tools=tools,
        tool_choice=tool_choice,
        extra=extra,
        limit_name="max_completion_tokens",
        echo=echo,
    )


def _refuse_unserved(fields: Mapping[str, Any]) -> None:
    """Fields that need OpenAI's servers, or that we do not know."""
    if fields.get("truncation", "disabled") != "disabled":
        raise UnsupportedParameter(
            "'truncation' must be 'disabled': no target drops input items to fit",
            param="truncation",
        )
    include = fields.get("include", [])
    if not isinstance(include, list) or any(i not in _INCLUDABLE for i in include):
        raise UnsupportedParameter(
            "'include' may hold only 'reasoning.encrypted_content': no other extra output "
            "data is available",
            param="include",
        )
    known = {*_HARMLESS, *_PASSED, "truncation", "include"} | _SERVED
    for name in fields:
        if name not in known and name not in _STATEFUL:
            raise UnsupportedParameter(
                f"'{name}' is not supported by this gateway's /v1/responses", param=name
            )


#: Fields translated into the chat request (or echoed) by :func:`responses_request_from_wire`.
_SERVED = frozenset(
    {
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "metadata",
        "parallel_tool_calls",
    }
)


# -- tools, text format, reasoning ------------------------------------------------------


#: The keys a function tool may have (others, when not null, are refused).
_TOOL_KEYS = frozenset({"type", "name", "description", "parameters", "strict"})


def _tool_from_wire(raw: Any, index: int) -> Tool:
    at = f"tools[{index}]"
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind != "function":
        raise UnsupportedParameter(
            f"'{at}': tools of type {kind!r} are not supported: built-in tools run on "
            "OpenAI's servers; only function tools are served",
            param=f"{at}.type",
        )
    if not isinstance(raw.get("name"), str):
        raise InvalidRequest(f"'{at}.name' must be a string", param=f"{at}.name")
    for key, value in raw.items():
        if key not in _TOOL_KEYS and value is not None:
            raise UnsupportedParameter(
                f"'{at}.{key}' is not supported on function tools here", param=f"{at}.{key}"
            )
    parameters = raw.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest(f"'{at}.parameters' must be an object", param=f"{at}.parameters")
    strict = raw.get("strict")
    description = raw.get("description")
    return Tool(
        name=raw["name"],
        description=description if isinstance(description, str) else None,
        parameters=parameters,
        strict=strict if isinstance(strict, bool) else None,
    )


def _tool_to_echo(t: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": t.name,
        "description": t.description,
        "parameters": t.parameters,
        "strict": t.strict,
    }


def _tool_choice_from_wire(raw: Any) -> str | dict[str, Any] | None:
    if raw is None or (isinstance(raw, str) and raw in _TOOL_CHOICES):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "function":
        if not isinstance(raw.get("name"), str):
            raise InvalidRequest("'tool_choice.name' must be a string", param="tool_choice.name")
        return {"type": "function", "function": {"name": raw["name"]}}
    raise UnsupportedParameter(
        "'tool_choice' must be none, auto, required or a function by name "
        "(built-in tools and allowed_tools are not served)",
        param="tool_choice",
    )


def _text_from_wire(raw: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """``text`` -> ``response_format`` (and ``verbosity``); returns its echo."""
    if raw is None:
        return {"format": {"type": "text"}}
    if not isinstance(raw, dict):
        raise InvalidRequest("'text' must be an object", param="text")
    _only(raw, {"format", "verbosity"}, "text")
    fmt = raw.get("format") or {"type": "text"}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        extra["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        extra["response_format"] = {"type": "json_schema", "json_schema": _schema(fmt)}
    elif kind != "text":
        raise InvalidRequest(
            "'text.format.type' must be text, json_object or json_schema",
            param="text.format.type",
        )
    echo: dict[str, Any] = {"format": fmt}
    verbosity = raw.get("verbosity")
    if verbosity is not None:
        if verbosity not in ("low", "medium", "high"):
            raise InvalidRequest(
                "'text.verbosity' must be low, medium or high", param="text.verbosity"
            )
        extra["verbosity"] = echo["verbosity"] = verbosity
    return echo


def _schema(fmt: Mapping[str, Any]) -> dict[str, Any]:
    """The Responses ``json_schema`` format (flat) -> the chat one's ``json_schema``."""
    _only(fmt, {"type", "name", "schema", "strict", "description"}, "text.format")
    if not isinstance(fmt.get("name"), str):
        raise InvalidRequest("'text.format.name' must be a string", param="text.format.name")
    if not isinstance(fmt.get("schema"), dict):
        raise InvalidRequest("'text.format.schema' must be an object", param="text.format.schema")
    schema = {"name": fmt["name"], "schema": fmt["schema"]}
    for key in ("strict", "description"):
        if fmt.get(key) is not None:
            schema[key] = fmt[key]
    return schema


def _reasoning_from_wire(raw: Any, extra: dict[str, Any]) -> dict[str, Any] | None:
    """``reasoning.effort`` -> ``reasoning_effort``; returns its echo."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest("'reasoning' must be an object", param="reasoning")
    _only(raw, {"effort", "summary", "generate_summary"}, "reasoning")
    echo: dict[str, Any] = {}
    for key in ("effort", "summary", "generate_summary"):
        value = raw.get(key)
        if value is None:
            continue
        allowed = _EFFORTS if key == "effort" else _SUMMARIES
        if not isinstance(value, str) or value not in allowed:
            raise InvalidRequest(
                f"'reasoning.{key}' must be one of {', '.join(sorted(allowed))}",
                param=f"reasoning.{key}",
            )
        echo[key] = value
    if "effort" in echo:
        extra["reasoning_effort"] = echo["effort"]
    return echo


def _only(raw: Mapping[str, Any], keys: set[str], where: str) -> None:
    for key, value in raw.items():
        if key not in keys and value is not None:
            raise UnsupportedParameter(
                f"'{where}.{key}' is not supported by this gateway", param=f"{where}.{key}"
            )
