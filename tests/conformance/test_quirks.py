"""What only one provider kind does, through the daemon over loopback: the scenarios the
shared suite cannot phrase for every kind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import openai
import pytest

from tests.conformance._case import PNG, TOOLS
from tests.conformance._cases import ANTHROPIC, AZURE, BEDROCK, COHERE, GEMINI, OPENAI
from tests.conformance.conftest import text_of
from tests.conftest import RouterFactory, openai_client
from tests.fakes.bedrock_upstream import FakeBedrock
from tests.fakes.openai_upstream import FakeOpenAI, running

if TYPE_CHECKING:
    from tests.conformance.conftest import Gateway

X: Any = [{"role": "user", "content": "x"}]
QUESTION: Any = {"role": "user", "content": "weather in Paris?"}


async def test_openai_keys_and_their_echoes(gateway: Gateway) -> None:
    """A provider without a key sends none; a key an upstream echoes back in its error
    (as OpenAI's 401 does, here whole) never reaches the client."""
    keyless = attrs.evolve(OPENAI, fake=FakeOpenAI)  # a fake that takes any key, or none
    tables = [
        '[providers.backup]\nkind = "openai"\nbase_url = "{url}"',
        '[routes.safe]\nfallback = ["p:fail-500", "backup:gpt-4o-mini"]',
        '[routes.doomed]\nfallback = ["p:fail-401", "backup:fail-500"]',
    ]
    async with gateway(keyless, *tables) as served:
        answer = await served.client.chat.completions.create(model="safe", messages=X)
        with pytest.raises(openai.APIStatusError) as caught:
            await served.client.chat.completions.create(model="doomed", messages=X)
        # no [DONE], yet a finish: complete
        text = text_of(await served.stream("p:no-done", "a b c"))
    assert answer.choices[0].message.content == "echo: x"
    key = OPENAI.credentials.env["OPENAI_TEST_KEY"]
    sent = served.fake.received
    assert sent[0].headers["authorization"] == f"Bearer {key}"
    assert "authorization" not in sent[1].headers  # backup has no key
    assert caught.value.status_code == 502
    assert sent[2].headers["authorization"] == f"Bearer {key}"
    assert key not in caught.value.response.text
    assert text == "echo: a b c"


def test_key_like_tokens_are_scrubbed_from_upstream_messages() -> None:
    from adapters import InvalidRequest
    from router.upstream._transport import HttpxTransport
    from router.upstream._upstream import HTTPUpstream

    # Scrubbing needs no adapter.
    upstream = HTTPUpstream("p", "openai", None, HttpxTransport(), ("hunter2-token",))  # type: ignore[arg-type]
    err = upstream._scrubbed(
        InvalidRequest("bad key sk-proj-****abcd and hunter2-token, see docs", upstream_status=400)
    )
    assert err.message == "bad key [redacted] and [redacted], see docs"


async def test_anthropic_max_tokens_and_text_beside_a_tool_call(gateway: Gateway) -> None:
    """Anthropic requires ``max_tokens``: the provider's, when the client gives none; and
    an answer's text beside its tool call goes both ways."""
    async with gateway(ANTHROPIC, extra="max_tokens = 321") as served:
        answer = await served.client.chat.completions.create(
            model="p:tool-caller", messages=[QUESTION], tools=TOOLS
        )
        message = answer.choices[0].message
        turn: Any = [QUESTION, message.model_dump(exclude_none=True)]
        await served.client.chat.completions.create(model="chat", messages=turn, tools=TOOLS)
    assert message.content == "Let me check."
    first, then = (r.body for r in served.fake.received)
    assert first["max_tokens"] == 321
    assert then["messages"][1]["content"] == [
        {"type": "text", "text": "Let me check."},
        {
            "type": "tool_use",
            "id": "toolu_01fake",
            "name": "get_weather",
            "input": {"city": "Paris"},
        },
    ]


async def test_azure_deployment_pinned_by_the_provider(gateway: Gateway) -> None:
    async with gateway(AZURE, extra='deployment = "gpt-4o-prod"') as served:
        answer = await served.client.chat.completions.create(model="p:anything", messages=X)
    assert answer.choices[0].message.content == "echo: x"
    assert served.fake.received[0].path == "/openai/deployments/gpt-4o-prod/chat/completions"


async def test_bedrock_api_key_is_a_bearer(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_BEDROCK_KEY", "brk-secret-key")
    app = FakeBedrock(region="us-west-2", api_key="brk-secret-key")
    async with running(app) as upstream:
        toml = f"""
[providers.aws]
kind = "bedrock"
region = "us-west-2"
base_url = "{upstream}"
api_key = "env:FAKE_BEDROCK_KEY"

[routes.chat]
fallback = ["aws:{BEDROCK.model}"]
"""
        async with start_router(toml) as url, openai_client(url) as client:
            answer = await client.chat.completions.create(model="chat", messages=X)
    assert answer.choices[0].message.content == "echo: x"
    assert app.received[0].headers["authorization"] == "Bearer brk-secret-key"
    assert "x-amz-date" not in app.received[0].headers


async def test_cohere_text_model_never_gets_an_image(gateway: Gateway) -> None:
    content: Any = [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]
    async with gateway(COHERE) as served:
        with pytest.raises(openai.BadRequestError) as caught:
            await served.client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": content}]
            )
    assert caught.value.code == "unsupported_capability"
    assert served.fake.received == []


async def test_gemini_named_tool_and_refused_key(gateway: Gateway) -> None:
    named: Any = {"type": "function", "function": {"name": "get_weather"}}
    async with gateway(GEMINI) as served:
        await served.client.chat.completions.create(
            model="p:tool-caller", messages=[QUESTION], tools=TOOLS, tool_choice=named
        )
        with pytest.raises(openai.InternalServerError):
            await served.client.chat.completions.create(model="wrong:gemini-2.5-flash", messages=X)
    named_sent, refused = served.fake.received
    assert named_sent.body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert refused.headers["x-goog-api-key"] == GEMINI.credentials.secret
