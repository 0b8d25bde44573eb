"""Every provider kind, through the daemon over loopback, answers the OpenAI SDK alike.

Each test runs once per kind (:data:`tests.conformance._cases.CASES`) against that
kind's fake, which speaks the provider's wire format and checks what the provider
checks; the case says what the request must look like there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageFunctionToolCall

from tests.conformance._case import PNG, TOOLS, ProviderCase, dig
from tests.conformance.conftest import finish_of, kinds, text_of

if TYPE_CHECKING:
    from tests.conformance.conftest import Gateway

QUESTION: Any = {"role": "user", "content": "weather in Paris?"}


@kinds()
async def test_plain_answer(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served:
        raw = await served.client.chat.completions.with_raw_response.create(
            model="chat",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi there"},
            ],
            temperature=0.5,
            top_p=0.9,
            max_tokens=50,
            stop=["END"],
        )
    answer = raw.parse()
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == case.answered
    assert answer.usage is not None
    prompt, completion = case.usage[0]
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (prompt, completion)
    assert answer.usage.total_tokens == prompt + completion
    assert raw.headers["x-router-route"] == "chat"
    assert raw.headers["x-router-target"] == f"p:{case.model}"
    assert raw.headers["x-router-attempts"] == "1"
    assert len(raw.headers["x-request-id"]) == 32
    [sent] = served.fake.received
    served.check_sent(sent)
    assert sent.body == case.body


@kinds()
async def test_stream_with_usage(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served:
        chunks = await served.stream(
            "chat", "one two three", stream_options={"include_usage": True}
        )
        plain = await served.stream("chat", "a b")
    assert text_of(chunks) == "echo: one two three"
    assert finish_of(chunks) == "stop"
    assert chunks[-1].usage is not None
    usage = (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens)
    assert usage == case.usage[1]
    # one answer, one id (Azure's filter-only chunk never reaches the client)
    assert {c.id for c in chunks} == {chunks[0].id}
    assert text_of(plain) == "echo: a b"
    assert all(c.usage is None for c in plain)  # not asked for, not sent
    sent = served.fake.received[0]
    served.check_sent(sent, streamed=True)
    assert {k: sent.body[k] for k in case.streamed} == case.streamed


@kinds()
async def test_length_finish(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served:
        answer = await served.client.chat.completions.create(
            model=f"p:{case.long}", messages=[{"role": "user", "content": "x"}]
        )
        chunks = await served.stream(f"p:{case.long}", "x")
    assert answer.choices[0].finish_reason == "length"
    assert finish_of(chunks) == "length"


@kinds()
@pytest.mark.parametrize("choice", ["auto", "required"])
async def test_tool_call(gateway: Gateway, case: ProviderCase, choice: Any) -> None:
    if choice not in case.tool_choice:
        async with gateway(case) as served:
            with pytest.raises(openai.BadRequestError) as refused:
                await served.client.chat.completions.create(
                    model="p:tool-caller", messages=[QUESTION], tools=TOOLS, tool_choice=choice
                )
        assert (refused.value.code, refused.value.param) == ("unsupported_parameter", "tool_choice")
        assert served.fake.received == []
        return
    async with gateway(case) as served:
        answer = await served.client.chat.completions.create(
            model="p:tool-caller", messages=[QUESTION], tools=TOOLS, tool_choice=choice
        )
        chunks = await served.stream("p:tool-caller", "weather in Paris?", tools=TOOLS)
    assert answer.choices[0].message.tool_calls is not None
    [call] = answer.choices[0].message.tool_calls
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert call.id == case.tool_id
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'
    assert answer.choices[0].finish_reason == "tool_calls"
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert len(deltas) == case.tool_pieces
    assert deltas[0].id == case.tool_id
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert arguments == case.streamed_arguments
    assert orjson.loads(arguments) == {"city": "Paris"}
    assert finish_of(chunks) == "tool_calls"
    sent = served.fake.received[0].body
    assert {k: sent[k] for k in case.tool_choice[choice]} == case.tool_choice[choice]


@kinds()
async def test_tool_result_goes_back(gateway: Gateway, case: ProviderCase) -> None:
    call: Any = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    async with gateway(case) as served:
        answer = await served.client.chat.completions.create(
            model="chat",
            messages=[
                QUESTION,
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_abc", "content": "18C and sunny"},
            ],
            tools=TOOLS,
        )
    assert answer.choices[0].message.content == case.tool_answer
    where, turn = case.tool_turn
    assert served.fake.received[0].body[where][1:] == turn


@kinds()
async def test_image_data_url(gateway: Gateway, case: ProviderCase) -> None:
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
        },
    ]
    model = f"p:{case.vision_model}" if case.vision_model else "chat"
    async with gateway(case) as served:
        answer = await served.client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}]
        )
    assert answer.choices[0].message.content == "echo: what is this? [1 image(s)]"
    where, image = case.image
    assert dig(served.fake.received[0].body, where) == image


@kinds(lambda case: not case.image_urls)
async def test_image_url_is_refused_without_fetching(gateway: Gateway, case: ProviderCase) -> None:
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://img.test/cat.png"}},
    ]
    async with gateway(case) as served:
        with pytest.raises(openai.BadRequestError) as caught:
            await served.client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": content}]
            )
    assert caught.value.code == "unsupported_capability"
    assert "server.fetch_images = true" in caught.value.message
    assert served.fake.received == []  # nothing was sent


@kinds(lambda case: case.unsafe)
async def test_filtered_answer(gateway: Gateway, case: ProviderCase) -> None:
    assert case.unsafe is not None
    model, content, streamed = case.unsafe
    async with gateway(case) as served:
        answer = await served.client.chat.completions.create(
            model=f"p:{model}", messages=[{"role": "user", "content": "x"}]
        )
        chunks = await served.stream(f"p:{model}", "x")
    assert answer.choices[0].finish_reason == "content_filter"
    assert answer.choices[0].message.content == content
    assert text_of(chunks) == streamed
    assert finish_of(chunks) == "content_filter"


@kinds()
async def test_httpx2_transport_serves_the_same(gateway: Gateway, case: ProviderCase) -> None:
    pool = 'pool = { transport = "httpx", max_connections = 4 }'
    route = f'[routes.safe]\nfallback = ["p:fail-500", "p:{case.model}"]'
    async with gateway(case, route, extra=pool) as served:
        answer = await served.client.chat.completions.create(
            model="safe", messages=[{"role": "user", "content": "via httpx2"}]
        )
        chunks = await served.stream("chat", "a b")
        with pytest.raises(openai.APIError, match="upstream"):
            await served.stream("p:break-mid-stream")
    assert answer.choices[0].message.content == "echo: via httpx2"
    assert text_of(chunks) == "echo: a b"
