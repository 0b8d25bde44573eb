"""Two tool calls whose argument pieces an OpenAI-format upstream interleaves, streamed
to the official anthropic SDK through the daemon's ``/v1/messages``: each call's block
stops only once its arguments are whole (a client may run a tool at its block's
``content_block_stop``), and the final message holds both calls, each with exactly its
own arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from tests.conftest import anthropic_client
from tests.fakes._base import Received, Stream, sse
from tests.fakes.openai_upstream import FakeOpenAI, running

if TYPE_CHECKING:
    from anthropic.types import ToolParam

    from tests.conftest import RouterFactory

TOOLS: list[ToolParam] = [
    {
        "name": name,
        "description": name,
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    for name in ("get_weather", "get_time")
]

#: (tool-call index, argument piece), in the order the upstream streams them: both
#: calls open first, then their arguments alternate (as some OpenAI-compatible hosts
#: stream parallel calls).
PIECES = [
    (0, '{"city"'),
    (1, '{"city":'),
    (0, ':"Paris"'),
    (1, '"Tokyo"}'),
    (0, "}"),
]


@attrs.define
class InterleavingOpenAI(FakeOpenAI):
    """Streams two parallel tool calls, interleaved by their index."""

    def stream(self, model: str, got: Received) -> Stream:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return sse(self._chunk_body(model, [choice]))

        def call(index: int, **fields: Any) -> dict[str, Any]:
            return {"tool_calls": [{"index": index, **fields}]}

        opens = [
            chunk(call(i, id=f"call_{i}", type="function", function={"name": t["name"]}))
            for i, t in enumerate(TOOLS)
        ]
        pieces = [chunk(call(i, function={"arguments": p})) for i, p in PIECES]
        usage = sse({**self._chunk_body(model, []), "usage": self.usage()})
        return Stream(
            head=[chunk({"role": "assistant", "content": None})],
            pieces=[*opens, *pieces],
            tail=[chunk({}, "tool_calls"), usage, b"data: [DONE]\n\n"],
        )


async def test_interleaved_tool_calls_reach_the_sdk_whole(start_router: RouterFactory) -> None:
    upstream = InterleavingOpenAI()
    async with running(upstream) as base:
        toml = f"""
[defaults]
retries = 0

[providers.oa]
kind = "openai"
base_url = "{base}/v1"

[routes.chat]
fallback = ["oa:gpt-4o"]
"""
        async with (
            start_router(toml) as url,
            anthropic_client(url) as client,
            client.messages.stream(
                model="chat",
                max_tokens=100,
                tools=TOOLS,
                messages=[{"role": "user", "content": "weather in Paris, time in Tokyo?"}],
            ) as stream,
        ):
            stopped = [
                (e.index, e.content_block.id, e.content_block.name, e.content_block.input)
                async for e in stream
                if e.type == "content_block_stop" and e.content_block.type == "tool_use"
            ]
            final = await stream.get_final_message()
    expected = [
        ("call_0", "get_weather", {"city": "Paris"}),
        ("call_1", "get_time", {"city": "Tokyo"}),
    ]
    assert stopped == [(i, *call) for i, call in enumerate(expected)]
    calls = [(b.id, b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert calls == expected
    assert [b.type for b in final.content] == ["tool_use", "tool_use"]
    assert final.stop_reason == "tool_use"
    usage = final.usage
    prompt = usage.input_tokens + (usage.cache_read_input_tokens or 0)
    assert (prompt, usage.output_tokens) == FakeOpenAI.USAGE
    assert upstream.received[0].body["stream"] is True
