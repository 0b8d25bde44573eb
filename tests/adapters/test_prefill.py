"""A prefilled request (the delivered text as a trailing assistant message) in each
provider's prefill form, each kind's honest ``prefill`` default, and the seam."""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import pytest

import adapters
import rules
from adapters import GatewayRequest, HTTPAdapter, Message, Seam, adapter_factory, prefilled
from adapters._bedrock import make_adapter as bedrock_adapter

ORIGINAL = GatewayRequest(
    model="r", messages=(Message("system", "Be brief."), Message("user", "tell a story"))
)
DELIVERED = "Once upon a time"
REQ = prefilled(ORIGINAL, DELIVERED)


def make(kind: str, **settings: Any) -> HTTPAdapter:
    return adapter_factory(kind)(
        kind, {"kind": kind, "base_url": "https://h.test/v1", "headers": {}, **settings}
    )


def bedrock() -> HTTPAdapter:
    settings: dict[str, Any] = {
        "region": "us-east-1",
        "base_url": None,
        "api_key": "k",
        "headers": {},
    }
    return bedrock_adapter("aws", settings)


def body(adapter: HTTPAdapter, req: GatewayRequest, model: str = "m") -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(adapter.build_request(req, model).body)
    return result


def test_prefilled_appends_the_delivered_text_as_the_assistant_turn() -> None:
    assert REQ.messages == (*ORIGINAL.messages, Message("assistant", DELIVERED))
    assert REQ.model == ORIGINAL.model


def test_anthropic_last_message_is_the_assistant_text() -> None:
    assert body(make("anthropic", max_tokens=64), REQ)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "tell a story"}]},
        {"role": "assistant", "content": [{"type": "text", "text": DELIVERED}]},
    ]


def test_anthropic_prefill_is_sent_without_its_trailing_whitespace() -> None:
    # Anthropic refuses a final assistant text ending in whitespace (a 400).
    messages = body(make("anthropic", max_tokens=64), prefilled(ORIGINAL, "Once upon \n"))[
        "messages"
    ]
    assert messages[-1] == {"role": "assistant", "content": [{"type": "text", "text": "Once upon"}]}


def test_anthropic_whitespace_only_prefill_is_no_turn_at_all() -> None:
    messages = body(make("anthropic", max_tokens=64), prefilled(ORIGINAL, " \n"))["messages"]
    assert [m["role"] for m in messages] == ["user"]


def test_gemini_last_content_is_a_model_turn() -> None:
    assert body(make("gemini", base_url="https://g.test/v1beta"), REQ)["contents"] == [
        {"role": "user", "parts": [{"text": "tell a story"}]},
        {"role": "model", "parts": [{"text": DELIVERED}]},
    ]


def test_bedrock_last_message_is_the_assistant_text() -> None:
    assert body(bedrock(), REQ, "anthropic.claude-3-haiku-20240307-v1:0")["messages"] == [
        {"role": "user", "content": [{"text": "tell a story"}]},
        {"role": "assistant", "content": [{"text": DELIVERED}]},
    ]


def test_ollama_last_message_is_the_assistant_text() -> None:
    assert body(make("ollama", base_url="http://o.test"), REQ)["messages"][-2:] == [
        {"role": "user", "content": "tell a story"},
        {"role": "assistant", "content": DELIVERED},
    ]


def test_cohere_last_message_is_the_assistant_text() -> None:
    assert body(make("cohere", base_url="https://c.test"), REQ)["messages"][-2:] == [
        {"role": "user", "content": "tell a story"},
        {"role": "assistant", "content": DELIVERED},
    ]


def test_vllm_is_asked_to_continue_the_final_message() -> None:
    sent = body(make("vllm"), REQ)
    assert sent["messages"][-1] == {"role": "assistant", "content": DELIVERED}
    assert sent["continue_final_message"] is True
    assert sent["add_generation_prompt"] is False


def test_vllm_without_a_prefill_gets_no_extra_keys() -> None:
    sent = body(make("vllm"), ORIGINAL)
    assert "continue_final_message" not in sent
    assert "add_generation_prompt" not in sent


def test_vllm_keeps_a_clients_own_choice() -> None:
    req = prefilled(
        GatewayRequest(**{**_fields(ORIGINAL), "extra": {"add_generation_prompt": True}}), "x"
    )
    sent = body(make("vllm"), req)
    assert sent["add_generation_prompt"] is True
    assert "continue_final_message" not in sent


def test_mistral_marks_the_final_assistant_message_as_a_prefix() -> None:
    sent = body(make("mistral"), REQ)
    assert sent["messages"][-1] == {"role": "assistant", "content": DELIVERED, "prefix": True}
    assert "prefix" not in sent["messages"][-2]


def test_openai_sends_the_trailing_assistant_message_as_it_is() -> None:
    sent = body(make("openai"), REQ)
    assert sent["messages"][-1] == {"role": "assistant", "content": DELIVERED}
    assert "continue_final_message" not in sent


@pytest.mark.parametrize(
    ("adapter", "model", "prefill"),
    [
        # Chat Completions answers a trailing assistant message anew.
        (lambda: make("openai"), "gpt-4o", False),
        (lambda: make("openai_compatible"), "m", False),
        (lambda: make("azure", base_url="https://a.test"), "gpt-4o", False),
        (lambda: make("together"), "m", False),
        (lambda: make("deepseek"), "deepseek-chat", False),  # only on its beta endpoint
        (lambda: make("openrouter"), "m", False),  # depends on the model behind it
        (lambda: make("fireworks"), "m", False),
        # The hosts that continue it, with their fix-ups.
        (lambda: make("vllm"), "m", True),
        (lambda: make("mistral"), "mistral-small", True),
        (lambda: make("groq"), "llama", True),
        # The native formats that continue a final assistant (or model) turn.
        (lambda: make("anthropic", max_tokens=64), "claude-test", True),
        (lambda: make("gemini", base_url="https://g.test/v1beta"), "gemini-2.5-flash", True),
        (lambda: make("ollama", base_url="http://o.test"), "llama3.2", True),
        (bedrock, "anthropic.claude-3-haiku-20240307-v1:0", True),
        (bedrock, "us.anthropic.claude-sonnet-4-20250514-v1:0", True),
        (bedrock, "meta.llama3-70b-instruct-v1:0", False),
        # Cohere documents no continuation.
        (lambda: make("cohere", base_url="https://c.test"), "command-a-03-2025", False),
    ],
)
def test_prefill_defaults(adapter: Any, model: str, prefill: bool) -> None:
    assert adapter().capabilities(model).prefill is prefill


def _fields(req: GatewayRequest) -> dict[str, Any]:
    return {"model": req.model, "messages": req.messages}


@pytest.mark.parametrize(
    ("delivered", "pieces", "passed"),
    [
        ("a b", [" c", " d"], [" c", " d"]),  # nothing to join
        ("a b ", [" c", " d"], ["c", " d"]),  # the space the client already has
        ("a b ", ["", " ", "c"], ["", "", "c"]),  # in pieces
        ("a b ", ["c"], ["c"]),  # the model did not repeat it
        ("a\n", ["\n\nc"], ["\nc"]),  # a paragraph break kept whole
        ("a  ", [" ", " c"], ["", "c"]),
        ("a ", ["\nc"], ["\nc"]),  # different whitespace is the model's own
    ],
)
def test_seam(delivered: str, pieces: list[str], passed: list[str]) -> None:
    seam = Seam.after(delivered)
    assert [seam.feed(p) for p in pieces] == passed


def test_config_sets_prefill_per_provider_and_per_model() -> None:
    config = rules.parse_config(
        """
[providers.claude]
kind = "anthropic"
api_key = "env:CLAUDE_KEY"
model_capabilities = { "claude-new" = { prefill = false } }

[providers.local]
kind = "openai_compatible"
base_url = "http://127.0.0.1:9/v1"
capabilities = { prefill = true }

[routes.r]
fallback = ["claude:claude-new", "local:m"]
""",
        kinds=adapters.provider_kinds(),
    )
    claude, local = config.providers["claude"], config.providers["local"]
    assert isinstance(claude, rules.HTTPProvider)
    assert isinstance(local, rules.HTTPProvider)
    assert claude.capabilities.prefill is None  # the adapter's default
    assert claude.model_capabilities["claude-new"].prefill is False
    assert local.capabilities.prefill is True


def test_every_capability_the_config_names_is_the_adapters() -> None:
    # The daemon overlays the config's capabilities onto the adapter's by field name.
    assert {f.name for f in attrs.fields(rules.Capabilities)} == {
        f.name for f in attrs.fields(adapters.Capabilities)
    }


def test_a_clients_own_prefill_and_the_delivered_text_are_one_message() -> None:
    asked = GatewayRequest(
        model="r", messages=(Message("user", "list"), Message("assistant", "1."))
    )
    assert prefilled(asked, " apples").messages == (
        Message("user", "list"),
        Message("assistant", "1. apples"),
    )
