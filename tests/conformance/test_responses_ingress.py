"""The OpenAI Responses ingress reaches every provider kind: the official openai SDK on
the daemon's ``/v1/responses``, routed to each kind's fake."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.conformance.conftest import kinds

if TYPE_CHECKING:
    from openai.types.responses import FunctionToolParam

    from tests.conformance._case import ProviderCase
    from tests.conformance.conftest import Gateway

WEATHER: list[FunctionToolParam] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": None,
    }
]


@kinds()
async def test_response_and_its_stream(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served:
        client = served.client
        response = await client.responses.create(
            model="chat", input="hi there", instructions="Be brief."
        )
        async with client.responses.stream(model="chat", input="one two three") as stream:
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            final = await stream.get_final_response()
    assert response.status == "completed"
    assert response.output_text == "echo: hi there"
    assert response.model == case.answered
    assert response.usage is not None
    assert response.usage.output_tokens == case.usage[0][1]
    assert "".join(deltas) == "echo: one two three"
    assert final.output_text == "echo: one two three"
    assert final.status == "completed"
    for sent, streamed in zip(served.fake.received, (False, True), strict=True):
        if case.kind == "openai":  # OpenAI's own API takes the Responses body as it is
            assert sent.path == "/v1/responses"
            served.check_auth(sent)
        else:
            served.check_sent(sent, streamed=streamed)


@kinds()
async def test_function_call(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served:
        client = served.client
        response = await client.responses.create(
            model="p:tool-caller", input="weather in Paris?", tools=WEATHER
        )
        async with client.responses.stream(
            model="p:tool-caller", input="weather in Paris?", tools=WEATHER
        ) as stream:
            final = await stream.get_final_response()
    for answer in (response, final):
        call = next(item for item in answer.output if item.type == "function_call")
        assert (call.call_id, call.name) == (case.tool_id, "get_weather")
        assert call.arguments.replace(" ", "") == '{"city":"Paris"}'
        assert answer.status == "completed"


@kinds()
async def test_failures_in_openai_shape(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served:
        client = served.client
        with pytest.raises(openai.RateLimitError) as limited:
            await client.responses.create(model="p:fail-429", input="x")
        with pytest.raises(openai.InternalServerError) as failed:
            await client.responses.create(model="p:fail-500", input="x")
        with pytest.raises(openai.APIError, match="upstream"):
            async with client.responses.stream(
                model="p:break-mid-stream", input="one two three four"
            ) as stream:
                await stream.get_final_response()
    limit: Any = limited.value.body
    assert limit["type"] == "rate_limit_error"
    assert failed.value.status_code == 502
