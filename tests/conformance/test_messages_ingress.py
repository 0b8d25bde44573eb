"""The Anthropic Messages ingress reaches every provider kind: the official anthropic SDK
on the daemon's ``/v1/messages``, routed to each kind's fake."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anthropic
import pytest

from tests.conformance.conftest import kinds

if TYPE_CHECKING:
    from tests.conformance._case import ProviderCase
    from tests.conformance.conftest import Gateway

WEATHER: Any = [
    {
        "name": "get_weather",
        "description": "Weather by city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def words(text: str) -> Any:
    return [{"role": "user", "content": text}]


@kinds()
async def test_message_and_its_stream(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served, served.anthropic() as client:
        message = await client.messages.create(
            model="chat", max_tokens=50, system="Be brief.", messages=words("hi there")
        )
        async with client.messages.stream(
            model="chat", max_tokens=50, messages=words("one two three")
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
    assert message.type == "message"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: hi there"
    assert message.stop_reason == "end_turn"
    assert message.model == case.answered
    assert message.usage.output_tokens == case.usage[0][1]
    assert text == "echo: one two three"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == case.usage[1][1]
    served.check_sent(served.fake.received[0])
    served.check_sent(served.fake.received[1], streamed=True)


@kinds()
async def test_tool_use(gateway: Gateway, case: ProviderCase) -> None:
    question = words("weather in Paris?")
    async with gateway(case) as served, served.anthropic() as client:
        message = await client.messages.create(
            model="p:tool-caller", max_tokens=50, tools=WEATHER, messages=question
        )
        async with client.messages.stream(
            model="p:tool-caller", max_tokens=50, tools=WEATHER, messages=question
        ) as stream:
            streamed = await stream.get_final_message()
    for answer in (message, streamed):
        call = next(block for block in answer.content if block.type == "tool_use")
        assert (call.id, call.name, call.input) == (case.tool_id, "get_weather", {"city": "Paris"})
        assert answer.stop_reason == "tool_use"


@kinds()
async def test_failures_in_anthropic_shape(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served, served.anthropic() as client:
        with pytest.raises(anthropic.RateLimitError) as limited:
            await client.messages.create(model="p:fail-429", max_tokens=10, messages=words("x"))
        with pytest.raises(anthropic.InternalServerError) as failed:
            await client.messages.create(model="p:fail-500", max_tokens=10, messages=words("x"))
        with pytest.raises(anthropic.APIError, match="upstream"):
            async with client.messages.stream(
                model="p:break-mid-stream", max_tokens=50, messages=words("one two three four")
            ) as stream:
                _ = [t async for t in stream.text_stream]
    limit: Any = limited.value.body
    failure: Any = failed.value.body
    assert limit["error"]["type"] == "rate_limit_error"
    assert failed.value.status_code == 502
    assert failure["error"]["type"] == "api_error"
