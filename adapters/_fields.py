"""What each target kind does with each request field of the two chat ingresses:
:data:`OPENAI_FIELDS` (``POST /v1/chat/completions``) and :data:`ANTHROPIC_FIELDS`
(``POST /v1/messages``), one :class:`Field` per request field.

Nothing is dropped without a word: for every kind a field is *translated* (into the
kind's own form), *passed through* (the target speaks the client's format and gets the
body as it came), or *refused* (400 ``unsupported_parameter`` naming it, which routing
treats as a missing capability: it moves on to a target that takes it). A field the
tables do not list is passed through to a target of the client's format and refused by
any other. :func:`refuse_fields` enforces the tables before a request is translated;
:func:`field_table` renders them for ``docs/providers.md`` (a test keeps the two
equal), and the round-trip tests are generated from them.

Pure data and functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ._errors import UnsupportedParameter
from ._passthrough import ANTHROPIC, OPENAI, passes_through, refuse_untranslated

if TYPE_CHECKING:
    from ._types import GatewayRequest

__all__ = [
    "ANTHROPIC_FIELDS",
    "COLUMNS",
    "OPENAI_FIELDS",
    "PASSED",
    "REFUSED",
    "TRANSLATED",
    "Field",
    "field_table",
    "refuse_fields",
    "refuse_untaken",
]

TRANSLATED = "translated"
PASSED = "passed through"
REFUSED = "refused"

#: The table's columns: a name, and the kinds it stands for.
COLUMNS: Mapping[str, str] = {
    OPENAI: "`openai`, `azure`, `openai_compatible` and the named hosts",
    ANTHROPIC: "`anthropic`",
    "gemini": "`gemini`",
    "bedrock": "`bedrock`",
    "cohere": "`cohere`",
    "ollama": "`ollama`",
}
_OTHERS = ("gemini", "bedrock", "cohere", "ollama")


@attrs.frozen
class Field:
    """One request field and what each column does with it.

    Attributes:
        name: The field, top level in the client's body.
        cells: Per column: TRANSLATED, PASSED or REFUSED.
        how: Per column, a word on the treatment (what it becomes, or what is taken).
        neutral: Values that ask for nothing (the default): the same as leaving the
            field out, never refused.
        sample: A value that asks for something, for the round-trip tests (None: the
            field is required, or only changes the answer's framing).
        needs: Other fields a request with :attr:`sample` has (``tools`` for a tool
            choice), for the same tests.
    """

    name: str
    cells: Mapping[str, str]
    how: Mapping[str, str] = attrs.field(factory=dict)
    neutral: tuple[Any, ...] = ()
    sample: Any = None
    needs: Mapping[str, Any] = attrs.field(factory=dict)


def _row(
    name: str,
    same: str,
    *,
    translated: tuple[str, ...] = (),
    how: Mapping[str, str] | None = None,
    neutral: tuple[Any, ...] = (),
    sample: Any = None,
    needs: Mapping[str, Any] | None = None,
) -> Field:
    """A field that the ``same`` format's kinds pass through, ``translated`` ones
    translate, and the rest refuse."""
    cells = {
        column: PASSED if column == same else TRANSLATED if column in translated else REFUSED
        for column in COLUMNS
    }
    return Field(name, cells, dict(how or {}), neutral, sample, dict(needs or {}))


_ALL = (OPENAI, ANTHROPIC, *_OTHERS)
_NOT_OLLAMA = (OPENAI, ANTHROPIC, "gemini", "bedrock", "cohere")
_SAMPLING = ("gemini", "cohere", "ollama")  # seed and the penalties
_TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


def _openai(name: str, translated: tuple[str, ...] = (), **more: Any) -> Field:
    return _row(name, OPENAI, translated=translated, **more)


OPENAI_FIELDS: tuple[Field, ...] = (
    _openai("model", _ALL),
    _openai("messages", _ALL),
    _openai("stream", _ALL, sample=True),
    _openai("stream_options", _ALL, how={k: "usage always asked for" for k in _ALL}),
    _openai(
        "temperature",
        _ALL,
        how={ANTHROPIC: "clamped to 1", "bedrock": "clamped to 1"},
        sample=0.5,
    ),
    _openai("top_p", _ALL, sample=0.5),
    _openai("max_tokens", _ALL, sample=77),
    _openai("max_completion_tokens", _ALL, sample=77),
    _openai("stop", _ALL, sample=["END"]),
    _openai("tools", _ALL, sample=_TOOLS),
    _openai(
        "tool_choice",
        _NOT_OLLAMA,
        how={"ollama": "`none` withholds the tools"},
        neutral=("auto", "none"),
        sample="required",
        needs={"tools": _TOOLS},
    ),
    _openai(
        "parallel_tool_calls",
        (ANTHROPIC,),
        how={ANTHROPIC: "`disable_parallel_tool_use`"},
        neutral=(True,),
        sample=False,
        needs={"tools": _TOOLS},
    ),
    _openai(
        "response_format",
        _ALL,
        how={
            ANTHROPIC: "a forced tool",
            "bedrock": "a forced tool",
            "gemini": "`responseMimeType`, `responseJsonSchema`",
            "ollama": "`format`",
        },
        neutral=({"type": "text"},),
        sample={"type": "json_object"},
    ),
    _openai(
        "n",
        ("gemini",),
        how={"gemini": "`candidateCount`"},
        neutral=(1,),
        sample=2,
    ),
    _openai("seed", _SAMPLING, how={"ollama": "`options`"}, sample=7),
    _openai("presence_penalty", _SAMPLING, how={"ollama": "`options`"}, neutral=(0,), sample=0.5),
    _openai("frequency_penalty", _SAMPLING, how={"ollama": "`options`"}, neutral=(0,), sample=0.5),
    _openai("top_k", (ANTHROPIC, "gemini"), how={"gemini": "`topK`"}, sample=5),
    _openai(
        "reasoning_effort",
        (ANTHROPIC,),
        how={ANTHROPIC: "a thinking budget"},
        neutral=("none",),
        sample="low",
    ),
    _openai("user", (ANTHROPIC,), how={ANTHROPIC: "`metadata.user_id`"}, sample="u-1"),
    _openai("logprobs", neutral=(False,), sample=True),
    _openai("top_logprobs", neutral=(0,), sample=2),
    _openai("logit_bias", neutral=({},), sample={"50256": -100}),
    _openai("service_tier", neutral=("auto",), sample="flex"),
    _openai("store", neutral=(False,), sample=True),
    _openai("metadata", neutral=({},), sample={"k": "v"}),
    _openai("modalities", neutral=(["text"],), sample=["text", "audio"]),
    _openai("audio", sample={"voice": "alloy", "format": "wav"}),
    _openai("prediction", sample={"type": "content", "content": "x"}),
    _openai("verbosity", sample="low"),
    _openai("web_search_options", sample={}),
    _openai("prompt_cache_key", sample="k"),
    _openai("safety_identifier", sample="s"),
    _openai("functions", sample=[{"name": "f"}]),
    _openai("function_call", neutral=("auto", "none"), sample={"name": "f"}),
)


def _anthropic(name: str, translated: tuple[str, ...] = (), **more: Any) -> Field:
    return _row(name, ANTHROPIC, translated=translated, **more)


ANTHROPIC_FIELDS: tuple[Field, ...] = (
    _anthropic("model", _ALL),
    _anthropic("messages", _ALL, how={OPENAI: "`document` and server-tool blocks refused"}),
    _anthropic("max_tokens", _ALL, sample=77),
    _anthropic("system", _ALL, how={k: "text blocks only" for k in _ALL}, sample="Be brief."),
    _anthropic("stop_sequences", _ALL, sample=["END"]),
    _anthropic("stream", _ALL, sample=True),
    _anthropic("temperature", _ALL, sample=0.5),
    _anthropic("top_p", _ALL, sample=0.5),
    _anthropic("tools", _ALL, how={k: "server tools refused" for k in _ALL}),
    _anthropic("tool_choice", _NOT_OLLAMA, neutral=({"type": "auto"}, {"type": "none"})),
    _anthropic(
        "metadata",
        (OPENAI,),
        how={OPENAI: "`user_id` as `user`"},
        neutral=({},),
        sample={"user_id": "u-1"},
    ),
    _anthropic("top_k", ("gemini",), how={"gemini": "`topK`"}, sample=5),
    _anthropic(
        "thinking",
        neutral=({"type": "disabled"},),
        sample={"type": "enabled", "budget_tokens": 1024},
    ),
    _anthropic("service_tier", neutral=("auto",), sample="standard_only"),
    _anthropic("container", sample="c-1"),
    _anthropic("mcp_servers", sample=[{"type": "url", "url": "https://x", "name": "x"}]),
    _anthropic("context_management", sample={"edits": []}),
)

_TABLES: Mapping[str, Mapping[str, Field]] = {
    OPENAI: {f.name: f for f in OPENAI_FIELDS},
    ANTHROPIC: {f.name: f for f in ANTHROPIC_FIELDS},
}


def refuse_fields(req: GatewayRequest, column: str | None, target: str) -> None:
    """Raises UnsupportedParameter for the first field of ``req`` that ``column``'s
    kinds refuse (see the module docstring), unless it has a neutral value. ``column``
    None (a kind of a plugin, ``simulated``): nothing is checked here.

    The fields are the client's body's where it travels with the request (an ingress
    of a table's format), else the OpenAI fields of the unified request's ``extra``
    (the Responses ingress, a resumed stream).
    """
    if column is None or column not in COLUMNS:
        return
    raw = req.raw
    if raw is not None and passes_through(req, column if column in _TABLES else None):
        return
    if raw is not None and raw.format in _TABLES:
        table, fields = _TABLES[raw.format], raw.body
    else:
        table, fields = _TABLES[OPENAI], req.extra
    for name, value in fields.items():
        field = table.get(name)
        cell = field.cells[column] if field is not None else REFUSED
        if cell != REFUSED or value is None or (field is not None and value in field.neutral):
            continue
        raise UnsupportedParameter(f"{target} takes no '{name}'", param=name)


def refuse_untaken(req: GatewayRequest, adapter: object, target: str) -> None:
    """Raises UnsupportedParameter for what of ``req`` the ``adapter``'s kind cannot
    take: a part only the client's format has (:func:`._passthrough.refuse_untranslated`),
    or a field its column refuses (:func:`refuse_fields`)."""
    refuse_untranslated(req, getattr(adapter, "same_format", None), target)
    refuse_fields(req, getattr(adapter, "fields", None), target)


def field_table(fields: tuple[Field, ...]) -> str:
    """``fields`` as a Markdown table: a row per field, a column per kind."""
    head = "| field | " + " | ".join(COLUMNS.values()) + " |"
    lines = [head, "| --- |" + " --- |" * len(COLUMNS)]
    for f in fields:
        cells = []
        for column in COLUMNS:
            cell = f.cells[column]
            notes = [f.how[column]] if column in f.how else []
            if cell == REFUSED and f.neutral:
                notes.append("unless " + " or ".join(_json(v) for v in f.neutral))
            cells.append(cell + (f" ({'; '.join(notes)})" if notes else ""))
        lines.append(f"| `{f.name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _json(value: Any) -> str:
    return "`" + orjson.dumps(value).decode() + "`"
