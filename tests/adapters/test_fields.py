"""The field tables (``adapters._fields``), checked field by field and kind by kind
against what the adapters do: a refused field is 400 ``unsupported_parameter`` naming
it; a translated one changes what the kind is sent; a passed-through one reaches the
target as the client sent it. And ``docs/providers.md`` shows the tables as they are."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from adapters import (
    UnsupportedParameter,
    messages_request_from_wire,
    refuse_untaken,
    request_from_wire,
)
from adapters._anthropic import AnthropicAdapter
from adapters._bedrock import BedrockAdapter
from adapters._cohere import CohereAdapter
from adapters._fields import (
    ANTHROPIC_FIELDS,
    COLUMNS,
    OPENAI_FIELDS,
    PASSED,
    REFUSED,
    Field,
    field_table,
)
from adapters._gemini import GeminiAdapter
from adapters._ollama import OllamaAdapter
from adapters._openai import OpenAIAdapter

if TYPE_CHECKING:
    from collections.abc import Callable

    from adapters import GatewayRequest, HTTPAdapter

ADAPTERS: dict[str, tuple[HTTPAdapter, str]] = {
    "openai": (OpenAIAdapter("https://api.openai.com/v1", api_key="k"), "gpt-4o"),
    "anthropic": (AnthropicAdapter(api_key="k"), "claude-sonnet-4-5"),
    "gemini": (GeminiAdapter(api_key="k"), "gemini-2.5-flash"),
    "bedrock": (BedrockAdapter("us-east-1", api_key="k"), "anthropic.claude-3-haiku-v1:0"),
    "cohere": (CohereAdapter(api_key="k"), "command-r"),
    "ollama": (OllamaAdapter(), "llama3"),
}
USER = [{"role": "user", "content": "hi"}]
INGRESSES: dict[str, tuple[Callable[[Any], GatewayRequest], dict[str, Any], tuple[Field, ...]]] = {
    "openai": (request_from_wire, {"model": "r", "messages": USER}, OPENAI_FIELDS),
    "anthropic": (
        messages_request_from_wire,
        {"model": "r", "max_tokens": 50, "messages": USER},
        ANTHROPIC_FIELDS,
    ),
}


def sent(column: str, req: GatewayRequest) -> tuple[str, Any]:
    """What a target of ``column`` is sent for ``req``, checked as the router checks it."""
    adapter, model = ADAPTERS[column]
    refuse_untaken(req, adapter, column)  # as the router does before translating
    upstream = adapter.build_request(req, model)
    return upstream.url, orjson.loads(upstream.body)


CASES = [
    pytest.param(ingress, f, column, id=f"{ingress}-{f.name}-{column}")
    for ingress, (_, _, fields) in INGRESSES.items()
    for f in fields
    if f.sample is not None
    for column in COLUMNS
]


@pytest.mark.parametrize(("ingress", "field", "column"), CASES)
def test_each_field_does_what_the_table_says(ingress: str, field: Field, column: str) -> None:
    decode, base, _ = INGRESSES[ingress]
    base = {**base, **field.needs}
    req = decode({**base, field.name: field.sample})
    cell = field.cells[column]
    if cell == REFUSED:
        with pytest.raises(UnsupportedParameter) as refused:
            sent(column, req)
        assert refused.value.param == field.name
        for value in field.neutral:  # asks for nothing: taken
            sent(column, decode({**base, field.name: value}))
        return
    url, body = sent(column, req)
    if cell == PASSED:
        assert body[field.name] == field.sample
    else:
        assert (url, body) != sent(column, decode(base)), "translated to nothing"


@pytest.mark.parametrize("ingress", INGRESSES)
@pytest.mark.parametrize("column", COLUMNS)
def test_a_field_not_in_the_table_passes_to_its_format_only(ingress: str, column: str) -> None:
    decode, base, _ = INGRESSES[ingress]
    req = decode({**base, "future_option": {"on": True}})
    if column == ingress:
        assert sent(column, req)[1]["future_option"] == {"on": True}
    else:
        with pytest.raises(UnsupportedParameter) as refused:
            sent(column, req)
        assert refused.value.param == "future_option"


@pytest.mark.parametrize("fields", [OPENAI_FIELDS, ANTHROPIC_FIELDS], ids=["openai", "anthropic"])
def test_the_docs_show_the_table(fields: tuple[Field, ...]) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "providers.md").read_text()
    assert field_table(fields) in docs


def test_every_field_has_every_column() -> None:
    for f in (*OPENAI_FIELDS, *ANTHROPIC_FIELDS):
        assert set(f.cells) == set(COLUMNS), f.name
        assert set(f.how) <= set(COLUMNS), f.name
