"""The Anthropic ingress codec: Messages requests in, any provider's answers out.

The encoder's bytes are parsed by the official ``anthropic`` SDK (over an httpx2
MockTransport), so "the SDK accepts it" is what is tested, not our reading of the docs.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.types import TextBlock, ToolUseBlock

from adapters import (
    AllTargetsFailed,
    AuthenticationFailed,
    ChatChunk,
    Choice,
    ChunkChoice,
    ContentFiltered,
    ContextLengthExceeded,
    Delta,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    ImagePart,
    InvalidRequest,
    Message,
    NetworkError,
    NoHealthyTarget,
    NotFound,
    Overloaded,
    ProviderInternalError,
    RateLimitExceeded,
    SerializationError,
    StreamError,
    TextPart,
    Timeout,
    Tool,
    ToolCall,
    ToolCallDelta,
    UnsupportedCapability,
    Usage,
)
from adapters._anthropic import AnthropicAdapter, AnthropicStreamDecoder
from adapters._anthropic_response import (
    error_event,
    error_to_wire,
    messages_response_to_wire,
)
from adapters._messages_request import messages_request_from_wire
from adapters._messages_stream import MessagesStreamEncoder
from tests.fakes.anthropic_upstream import stream_events

PNG = "iVBORw0KGgo="


def parse(**fields: Any) -> GatewayRequest:
    body = {"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    body.update(fields)
    return messages_request_from_wire(body)


# -- messages_request_from_wire ---------------------------------------------------------


def test_request_golden() -> None:
    req = parse(
        system="Be brief.",
        temperature=0.3,
        top_p=0.9,
        top_k=5,
        stop_sequences=["END"],
        stream=True,
        metadata={"user_id": "u"},
    )
    assert req == GatewayRequest(
        model="claude",
        messages=(Message("system", "Be brief."), Message("user", "hi")),
        stream=True,
        include_usage=True,
        temperature=0.3,
        top_p=0.9,
        max_tokens=100,
        stop=("END",),
        extra={"user": "u", "top_k": 5},  # in their OpenAI form (which kinds take them)
    )


def test_system_blocks_joined() -> None:
    system = [
        {"type": "text", "text": "One.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Two."},
    ]
    assert parse(system=system).messages[0] == Message("system", "One.\n\nTwo.")


def test_content_blocks_and_images() -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}},
    ]
    req = parse(messages=[{"role": "user", "content": content}])
    assert req.messages == (
        Message(
            "user",
            (
                TextPart("what is this?"),
                ImagePart(f"data:image/png;base64,{PNG}"),
                ImagePart("https://example.test/cat.jpg"),
            ),
        ),
    )
    single = parse(messages=[{"role": "user", "content": [{"type": "text", "text": "x"}]}])
    assert single.messages == (Message("user", "x"),)


def test_tool_use_and_results_become_openai_messages() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "no clock"}],
                    "is_error": True,
                },
                {"type": "text", "text": "thanks"},
            ],
        },
    ]
    req = parse(messages=messages)
    assert req.messages == (
        Message("user", "weather?"),
        Message(
            "assistant",
            "Let me check.",
            tool_calls=(
                ToolCall("toolu_1", "get_weather", '{"city":"Paris"}'),
                ToolCall("toolu_2", "now", "{}"),
            ),
        ),
        Message("tool", "18C", tool_call_id="toolu_1"),
        Message("tool", "Error: no clock", tool_call_id="toolu_2"),
        Message("user", "thanks"),
    )


def test_tool_result_images_follow_as_a_user_message() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    result = {
        "type": "tool_result",
        "tool_use_id": "t",
        "content": [{"type": "text", "text": "chart"}, image],
    }
    req = parse(messages=[{"role": "user", "content": [result]}])
    assert req.messages == (
        Message("tool", "chart", tool_call_id="t"),
        Message("user", (ImagePart(f"data:image/png;base64,{PNG}"),)),
    )


def test_tools_and_tool_choice() -> None:
    tools = [
        {
            "name": "get_weather",
            "description": "Weather by city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    req = parse(tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert req.tools == (
        Tool(
            "get_weather",
            "Weather by city",
            {"type": "object", "properties": {"city": {"type": "string"}}},
        ),
    )
    assert req.tool_choice == "required"
    assert req.extra == {"parallel_tool_calls": False}
    assert parse(tools=tools, tool_choice={"type": "auto"}).tool_choice == "auto"
    assert parse(tools=tools, tool_choice={"type": "none"}).tool_choice == "none"
    assert parse(tools=tools, tool_choice={"type": "tool", "name": "get_weather"}).tool_choice == {
        "type": "function",
        "function": {"name": "get_weather"},
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": "100"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"model": 3}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0]"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b"}]}
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "b"}]}]},
            "messages[0].content[0]",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/bmp",
                                    "data": PNG,
                                },
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "!!",
                                },
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}
                ]
            },
            "messages[0].content[0]",
        ),
        (  # not a string: once a TypeError (an unhashable list) and a 500
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": [], "data": PNG},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        ({"system": 5}, "system"),
        ({"system": [{"type": "image"}]}, "system"),
        ({"stream": "yes"}, "stream"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": True}, "top_p"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"tools": {}}, "tools"),
        ({"tools": [{"name": "x"}]}, "tools[0]"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice"),
    ],
)
def test_invalid_requests_name_the_param(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(**fields)
    assert info.value.param == param


def test_what_has_no_unified_form_is_named_and_the_body_kept() -> None:
    """Documents and server tools are Anthropic's own: an Anthropic target gets the body
    as it came; any other target refuses them by these names."""
    document = {"type": "document", "source": {"type": "text", "data": "x"}}
    body = {
        "model": "claude",
        "max_tokens": 10,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, document]}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    req = messages_request_from_wire(body)
    assert req.raw is not None
    assert req.raw.format == "anthropic"
    assert req.raw.body is body
    assert req.raw.untranslated == ("messages[0].content[1]", "tools[0]")
    assert req.messages == (Message("user", "hi"),)
    assert req.tools == ()


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest):
        messages_request_from_wire([1])


def test_round_trip_through_the_adapter() -> None:
    """Anthropic request in, through the unified types, out to Anthropic: unchanged."""
    original = {
        "model": "claude-test",
        "max_tokens": 300,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "weather in Paris? see"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.test/a.png"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "text", "text": "thanks"},
                ],
            },
        ],
        "stream": True,
        "temperature": 0.2,
        "top_p": 0.8,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather by city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    }
    req = messages_request_from_wire(original)
    sent = orjson.loads(AnthropicAdapter().build_request(req, "claude-test").body)
    assert sent == original


# -- messages_response_to_wire ----------------------------------------------------------


def response(message: Message, finish: str | None = "stop") -> GatewayResponse:
    return GatewayResponse(
        id="chatcmpl-1",
        model="gpt-4o-2024-08-06",
        created=1700000000,
        choices=(Choice(0, message, finish),),
        usage=Usage(7, 5),
    )


def test_response_golden() -> None:
    assert messages_response_to_wire(response(Message("assistant", "Hello!"))) == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o-2024-08-06",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 7,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 5,
        },
    }


def test_response_tool_calls() -> None:
    calls = (ToolCall("call_1", "get_weather", '{"city":"Paris"}'), ToolCall("call_2", "bad", "{x"))
    wire = messages_response_to_wire(
        response(Message("assistant", None, tool_calls=calls), "tool_calls")
    )
    assert wire["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "bad", "input": {"_raw": "{x"}},
    ]
    assert wire["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
        ("weird", "end_turn"),
    ],
)
def test_response_stop_reasons(finish: str | None, stop_reason: str) -> None:
    wire = messages_response_to_wire(response(Message("assistant", "x"), finish))
    assert wire["stop_reason"] == stop_reason


def test_response_without_usage_or_text() -> None:
    resp = GatewayResponse("m", "x", 0, (Choice(0, Message("assistant", ""), "stop"),))
    wire = messages_response_to_wire(resp)
    assert wire["content"] == []
    assert wire["usage"] == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }


@pytest.mark.parametrize(
    ("usage", "wire"),
    [
        (Usage(130, 9, cache_read_tokens=100, cache_write_tokens=20), (10, 20, 100, 9)),
        (Usage(7, 5, cache_read_tokens=3), (4, 0, 3, 5)),  # OpenAI's cached_tokens
        (Usage(10, 1, cache_read_tokens=8, cache_write_tokens=8), (0, 2, 8, 1)),  # capped
    ],
)
def test_usage_keeps_the_cache_counts_apart(usage: Usage, wire: tuple[int, ...]) -> None:
    resp = GatewayResponse("m", "x", 0, (Choice(0, Message("assistant", "hi"), "stop"),), usage)
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    got = messages_response_to_wire(resp)["usage"]
    assert tuple(got[k] for k in (*keys, "output_tokens")) == wire


def test_response_is_accepted_by_the_sdk() -> None:
    calls = (ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)
    wire = messages_response_to_wire(
        response(Message("assistant", "Checking.", tool_calls=calls), "tool_calls")
    )
    with sdk(orjson.dumps(wire), "application/json") as client:
        msg = client.messages.create(
            model="x", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert msg.content[0].type == "text"
    assert msg.content[1].type == "tool_use"
    assert msg.content[1].input == {"city": "Paris"}
    assert msg.stop_reason == "tool_use"
    assert msg.usage.input_tokens == 7


def test_response_round_trip_through_the_adapter() -> None:
    original = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 25,
            "cache_creation_input_tokens": 4,
            "cache_read_input_tokens": 100,
            "output_tokens": 40,
        },
    }
    resp = AnthropicAdapter().parse_response(200, (), orjson.dumps(original))
    assert messages_response_to_wire(resp) == original


# -- MessagesStreamEncoder, read by the SDK ---------------------------------------------


class sdk:
    """The official SDK, answered by ``body`` through an httpx2 MockTransport."""

    def __init__(
        self, body: bytes, content_type: str = "text/event-stream", status: int = 200
    ) -> None:
        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(status, headers={"content-type": content_type}, content=body)

        self.client = anthropic.Anthropic(
            api_key="k",
            base_url="http://test",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        )

    def __enter__(self) -> anthropic.Anthropic:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def final_message(data: bytes) -> anthropic.types.Message:
    with (
        sdk(data) as client,
        client.messages.stream(
            model="x", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        return stream.get_final_message()


def openai_chunks() -> list[ChatChunk]:
    def c(delta: Delta, finish: str | None = None) -> ChatChunk:
        return ChatChunk("chatcmpl-1", "gpt-4o", 1700000000, (ChunkChoice(0, delta, finish),))

    def args(index: int, piece: str) -> Delta:
        return Delta(tool_calls=(ToolCallDelta(index, arguments=piece),))

    return [
        c(Delta(role="assistant", content="")),
        c(Delta(content="Let me")),
        c(Delta(content=" check.")),
        c(Delta(tool_calls=(ToolCallDelta(0, id="call_1", name="get_weather", arguments=""),))),
        c(args(0, '{"city"')),
        c(args(0, ':"Paris"}')),
        # a whole call in one delta, as Gemini-shaped upstreams send them
        c(Delta(tool_calls=(ToolCallDelta(1, id="call_2", name="now", arguments="{}"),))),
        c(Delta(), "tool_calls"),
        ChatChunk("chatcmpl-1", "gpt-4o", 1700000000, (), usage=Usage(11, 22)),
    ]


def encode(chunks: list[ChatChunk]) -> bytes:
    encoder = MessagesStreamEncoder()
    return b"".join(encoder.feed(c) for c in chunks) + encoder.close()


def test_encoder_event_sequence() -> None:
    data = encode(openai_chunks())
    events = [e for e in data.split(b"\n\n") if e]
    names = [e.split(b"\n")[0].removeprefix(b"event: ").decode() for e in events]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for e in events:  # the data's type repeats the event name
        name, data_line = e.split(b"\n")
        assert (
            orjson.loads(data_line.removeprefix(b"data: "))["type"]
            == name.removeprefix(b"event: ").decode()
        )
    indexes = [orjson.loads(e.split(b"\n")[1][6:]).get("index") for e in events]
    assert indexes == [None, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, None, None]
    assert orjson.loads(events[-2].split(b"\n")[1][6:]) == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 11,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 22,
        },
    }


def test_encoder_output_parsed_by_the_sdk() -> None:
    msg = final_message(encode(openai_chunks()))
    assert msg.id == "msg_1"
    assert msg.model == "gpt-4o"
    assert [b.type for b in msg.content] == ["text", "tool_use", "tool_use"]
    text, call, empty = msg.content
    assert isinstance(text, TextBlock)
    assert isinstance(call, ToolUseBlock)
    assert isinstance(empty, ToolUseBlock)
    assert text.text == "Let me check."
    assert call.id == "call_1"
    assert call.input == {"city": "Paris"}
    assert empty.input == {}
    assert msg.stop_reason == "tool_use"
    assert msg.usage.input_tokens == 11
    assert msg.usage.output_tokens == 22


def test_text_after_a_tool_opens_a_new_block_and_refusal_is_text() -> None:
    def c(delta: Delta, finish: str | None = None) -> ChatChunk:
        return ChatChunk("i", "m", 0, (ChunkChoice(0, delta, finish),))

    chunks = [
        c(Delta(tool_calls=(ToolCallDelta(0, name="f", arguments='{"a":1}'),))),
        c(Delta(content="after")),
        c(Delta(refusal=" no")),
        c(Delta(), "content_filter"),
    ]
    msg = final_message(encode(chunks))
    assert [b.type for b in msg.content] == ["tool_use", "text"]
    call, text = msg.content
    assert isinstance(call, ToolUseBlock)
    assert isinstance(text, TextBlock)
    assert call.id == "toolu_0"
    assert text.text == "after no"
    assert msg.stop_reason == "refusal"


def events(data: bytes) -> list[tuple[str, Any]]:
    """(name, index or the delta's text) of each event; ``data`` is whole events."""
    out: list[tuple[str, Any]] = []
    for e in data.split(b"\n\n"):
        if e:
            body = orjson.loads(e.split(b"\n")[1].removeprefix(b"data: "))
            delta = body.get("delta", {})
            out.append(
                (body["type"], delta.get("partial_json", delta.get("text", body.get("index"))))
            )
    return out


def chunk(*calls: ToolCallDelta, text: str | None = None) -> ChatChunk:
    return ChatChunk("i", "m", 0, (ChunkChoice(0, Delta(content=text, tool_calls=calls)),))


def test_interleaved_blocks_are_held_until_the_open_one_may_stop() -> None:
    encoder = MessagesStreamEncoder()
    sent = [
        encoder.feed(chunk(text="Checking.")),
        encoder.feed(chunk(ToolCallDelta(0, "call_a", "f"), ToolCallDelta(1, "call_b", "g"))),
        encoder.feed(chunk(ToolCallDelta(1, arguments='{"y":'))),
        encoder.feed(chunk(ToolCallDelta(0, arguments='{"x":1}'), text="Both")),
        encoder.feed(chunk(ToolCallDelta(1, arguments="2}"), text=" asked.")),
        encoder.feed(ChatChunk("i", "m", 0, (ChunkChoice(0, Delta(), "tool_calls"),))),
        encoder.close(),
    ]
    assert [events(s) for s in sent] == [
        [("message_start", None), ("content_block_start", 0), ("content_block_delta", "Checking.")],
        # text may stop any time; the call that starts first streams live
        [("content_block_stop", 0), ("content_block_start", 1)],
        [],  # held: call 0 has no arguments yet
        [  # call 0's arguments are whole: it stops, call 1 goes on live
            ("content_block_delta", '{"x":1}'),
            ("content_block_stop", 1),
            ("content_block_start", 2),
            ("content_block_delta", '{"y":'),
        ],
        [  # now call 1's are whole too: the held text follows
            ("content_block_delta", "2}"),
            ("content_block_stop", 2),
            ("content_block_start", 3),
            ("content_block_delta", "Both asked."),
        ],
        [],
        [("content_block_stop", 3), ("message_delta", None), ("message_stop", None)],
    ]
    msg = final_message(b"".join(sent))
    assert [(b.type, getattr(b, "input", None)) for b in msg.content] == [
        ("text", None),
        ("tool_use", {"x": 1}),
        ("tool_use", {"y": 2}),
        ("text", None),
    ]
    assert [getattr(b, "id", None) for b in msg.content] == [None, "call_a", "call_b", None]


def test_held_blocks_go_whole_at_the_end_behind_a_call_never_whole() -> None:
    encoder = MessagesStreamEncoder()
    encoder.feed(chunk(ToolCallDelta(0, "call_a", "f", '{"x": {}')))  # a brace, not whole
    assert encoder.feed(chunk(ToolCallDelta(1, "call_b", "g", "{}"), text="hi")) == b""
    assert encoder.feed(chunk(ToolCallDelta(0, arguments=', "y": 1'))) != b""  # still live
    assert [name for name, _ in events(encoder.close())] == [
        "content_block_stop",
        *["content_block_start", "content_block_delta", "content_block_stop"] * 2,
        "message_delta",
        "message_stop",
    ]


def test_after_a_whole_object_only_whitespace_or_invalid_text_can_come() -> None:
    # A call stops once its arguments are a whole JSON object; what comes for it later
    # could not make them valid JSON with another value, and is not sent.
    encoder = MessagesStreamEncoder()
    data = encoder.feed(chunk(ToolCallDelta(0, "call_a", "f", '{"x": 1}')))
    data += encoder.feed(chunk(ToolCallDelta(1, "call_b", "g", '{"y"')))
    assert encoder.feed(chunk(ToolCallDelta(0, arguments=" \n"))) == b""
    assert encoder.feed(chunk(ToolCallDelta(0, arguments="}"))) == b""
    data += encoder.feed(chunk(ToolCallDelta(1, arguments=": 2}"))) + encoder.close()
    msg = final_message(data)
    assert [getattr(b, "input", None) for b in msg.content] == [{"x": 1}, {"y": 2}]


def test_an_error_drops_the_held_blocks() -> None:
    encoder = MessagesStreamEncoder()
    calls = (ToolCallDelta(0, "call_a", "f", "{"), ToolCallDelta(1, "call_b", "g", "{}"))
    encoder.feed(ChatChunk("i", "m", 0, (ChunkChoice(0, Delta(tool_calls=calls)),)))
    assert events(encoder.error_event(StreamError("broke"))) == [("error", None)]
    assert encoder.close() == b""


def test_encoder_with_no_chunks_still_valid() -> None:
    msg = final_message(MessagesStreamEncoder().close())
    assert msg.content == []
    assert msg.stop_reason == "end_turn"


def test_encoder_ignores_other_choices_and_input_after_close() -> None:
    encoder = MessagesStreamEncoder()
    out = encoder.feed(ChatChunk("i", "m", 0, (ChunkChoice(1, Delta(content="other")),)))
    assert b"other" not in out
    encoder.close()
    assert encoder.feed(ChatChunk("i", "m", 0, (ChunkChoice(0, Delta(content="x")),))) == b""
    assert encoder.close() == b""


def test_anthropic_stream_through_decoder_and_encoder_equals_the_original() -> None:
    """Anthropic upstream -> our chunks -> Anthropic client: the SDK sees the same message."""
    original = b"".join(stream_events("tool-caller", ""))
    decoder = AnthropicStreamDecoder()
    encoder = MessagesStreamEncoder()
    chunks = decoder.feed(original) + decoder.close()
    relayed = b"".join(encoder.feed(c) for c in chunks) + encoder.close()
    direct, via = final_message(original), final_message(relayed)
    assert via.content == direct.content
    assert via.stop_reason == direct.stop_reason
    assert via.id == direct.id
    # Input, cache reads and output as Anthropic counted them, not folded together.
    assert via.usage == direct.usage
    assert (via.usage.input_tokens, via.usage.cache_read_input_tokens) == (20, 5)


def test_error_event_raises_in_the_sdk() -> None:
    encoder = MessagesStreamEncoder()
    data = encoder.feed(openai_chunks()[1]) + encoder.error_event(Overloaded("upstream overloaded"))
    assert encoder.close() == b""  # nothing after the error
    assert data.endswith(
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"upstream overloaded"}}\n\n'
    )
    with pytest.raises(anthropic.APIStatusError) as info:
        final_message(data)
    assert "overloaded_error" in str(info.value)


def test_error_event_function() -> None:
    assert error_event(StreamError("broke")) == (
        b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"broke"}}\n\n'
    )


# -- error_to_wire ----------------------------------------------------------------------


class _ClientAuth(GatewayError):
    status_hint = 401


class _Forbidden(GatewayError):
    status_hint = 403


@pytest.mark.parametrize(
    ("err", "kind"),
    [
        (InvalidRequest("x"), "invalid_request_error"),
        (UnsupportedCapability("x"), "invalid_request_error"),
        (ContentFiltered("x"), "invalid_request_error"),
        (ContextLengthExceeded("x"), "invalid_request_error"),
        (NotFound("x"), "not_found_error"),
        (RateLimitExceeded("x"), "rate_limit_error"),
        (Overloaded("x"), "overloaded_error"),
        (NoHealthyTarget("x"), "overloaded_error"),
        (Timeout("x"), "timeout_error"),
        (AuthenticationFailed("x"), "api_error"),  # the upstream's key: not the client's fault
        (ProviderInternalError("x"), "api_error"),
        (NetworkError("x"), "api_error"),
        (SerializationError("x"), "api_error"),
        (StreamError("x"), "api_error"),
        (AllTargetsFailed((ProviderInternalError("x"),)), "api_error"),
        (_ClientAuth("x"), "authentication_error"),
        (_Forbidden("x"), "permission_error"),
    ],
)
def test_error_to_wire(err: GatewayError, kind: str) -> None:
    assert error_to_wire(err) == {"type": "error", "error": {"type": kind, "message": err.message}}


def test_error_body_read_by_the_sdk() -> None:
    body = orjson.dumps(error_to_wire(RateLimitExceeded("slow down")))
    with (
        sdk(body, "application/json", 429) as client,
        pytest.raises(anthropic.RateLimitError) as info,
    ):
        client.messages.create(
            model="x", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "slow down"},
    }
