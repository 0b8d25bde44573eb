"""The response cache: keys, LRU by bytes, TTL on an injected clock, replay and assemble."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import attrs
import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
)

from adapters import chunk_from_wire, chunk_to_wire, response_to_wire
from adapters._types import (
    ChatChunk,
    Choice,
    ChunkChoice,
    Delta,
    GatewayRequest,
    GatewayResponse,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from router.traffic._cache import (
    ENTRY_OVERHEAD,
    REPLAY_WORDS,
    CacheStats,
    ResponseCache,
    assemble,
    cache_key,
    replay,
)


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def request(**changes: Any) -> GatewayRequest:
    base = GatewayRequest(
        model="chat",
        messages=(
            Message("system", "be brief"),
            Message("user", "what is the weather in Paris?"),
        ),
        temperature=0.5,
        top_p=0.9,
        max_tokens=100,
        stop=("END",),
        tools=(Tool("weather", "the weather", {"type": "object", "properties": {}}),),
        tool_choice="auto",
        extra={"seed": 7, "response_format": {"type": "text"}},
    )
    return attrs.evolve(base, **changes)


def answer(text: str = "hello there", rid: str = "chatcmpl-1", **changes: Any) -> GatewayResponse:
    base = GatewayResponse(
        id=rid,
        model="gpt-4o-mini-2024-07-18",
        created=1_700_000_000,
        choices=(Choice(0, Message("assistant", text), "stop"),),
        usage=Usage(12, 34),
    )
    return attrs.evolve(base, **changes)


def size_of(resp: GatewayResponse) -> int:
    return len(orjson.dumps(response_to_wire(resp))) + ENTRY_OVERHEAD


def key(n: int) -> bytes:
    return n.to_bytes(32, "big")


# -- keys -------------------------------------------------------------------------------


def test_the_same_request_gives_the_same_key() -> None:
    k = cache_key("chat", request(), "alice")
    assert isinstance(k, bytes)
    assert len(k) == 32
    assert cache_key("chat", request(), "alice") == k


def test_key_ignores_the_order_of_extra_and_schema_keys() -> None:
    a = request(extra={"seed": 7, "response_format": {"type": "text"}})
    b = request(extra={"response_format": {"type": "text"}, "seed": 7})
    assert cache_key("chat", a, None) == cache_key("chat", b, None)
    schema = {"type": "object", "properties": {}}
    c = request(
        tools=(Tool("weather", "the weather", MappingProxyType(dict(reversed(schema.items())))),)
    )
    assert cache_key("chat", c, None) == cache_key("chat", request(), None)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param(
            {"messages": (Message("user", "what is the weather in Rome?"),)}, id="content"
        ),
        pytest.param(
            {
                "messages": (
                    Message("system", "be brief"),
                    Message("developer", "what is the weather in Paris?"),
                )
            },
            id="role",
        ),
        pytest.param(
            {
                "messages": (
                    Message("system", "be brief"),
                    Message("user", "what is the weather in Paris?", name="bob"),
                )
            },
            id="name",
        ),
        pytest.param(
            {
                "messages": (
                    Message("system", "be brief"),
                    Message("user", (TextPart("what is the weather in Paris?"),)),
                )
            },
            id="parts-vs-string",
        ),
        pytest.param(
            {
                "messages": (
                    Message("system", "be brief"),
                    Message("user", (TextPart("what is this?"), ImagePart("https://x/a.png"))),
                )
            },
            id="image",
        ),
        pytest.param(
            {
                "messages": (
                    Message("system", "be brief"),
                    Message(
                        "user", (TextPart("what is this?"), ImagePart("https://x/a.png", "low"))
                    ),
                )
            },
            id="image-detail",
        ),
        pytest.param(
            {
                "messages": (
                    Message("system", "be brief"),
                    Message("user", "what is the weather in Paris?"),
                    Message("assistant", None, tool_calls=(ToolCall("c1", "weather", "{}"),)),
                )
            },
            id="tool-calls",
        ),
        pytest.param(
            {
                "messages": (
                    Message("system", "be brief"),
                    Message("user", "what is the weather in Paris?"),
                    Message("tool", "sunny", tool_call_id="c2"),
                )
            },
            id="tool-call-id",
        ),
        pytest.param({"tools": ()}, id="no-tools"),
        pytest.param(
            {"tools": (Tool("weather", "the weather", {"type": "object"}),)}, id="tool-schema"
        ),
        pytest.param(
            {
                "tools": (
                    Tool(
                        "weather", "the weather", {"type": "object", "properties": {}}, strict=True
                    ),
                )
            },
            id="tool-strict",
        ),
        pytest.param({"tool_choice": "required"}, id="tool-choice"),
        pytest.param(
            {"tool_choice": {"type": "function", "function": {"name": "weather"}}},
            id="tool-choice-object",
        ),
        pytest.param({"temperature": 0.6}, id="temperature"),
        pytest.param({"temperature": None}, id="no-temperature"),
        pytest.param({"top_p": 1.0}, id="top-p"),
        pytest.param({"max_tokens": 101}, id="max-tokens"),
        pytest.param({"limit_name": "max_completion_tokens"}, id="limit-name"),
        pytest.param({"stop": ()}, id="stop"),
        pytest.param({"extra": {"seed": 8, "response_format": {"type": "text"}}}, id="seed"),
        pytest.param(
            {"extra": {"seed": 7, "response_format": {"type": "json_object"}}}, id="response-format"
        ),
        pytest.param({"extra": {"seed": 7, "response_format": {"type": "text"}, "n": 2}}, id="n"),
    ],
)
def test_key_changes_with_each_field_that_matters(changes: dict[str, Any]) -> None:
    assert cache_key("chat", request(**changes), "alice") != cache_key("chat", request(), "alice")


def test_key_changes_with_the_route() -> None:
    assert cache_key("chat", request(), None) != cache_key("chat-large", request(), None)


@pytest.mark.parametrize(
    "changes",
    [
        {"stream": True},
        {"stream": True, "include_usage": True},
        {"include_usage": True},
        {"model": "openai:gpt-4o"},
        {
            "extra": {
                "seed": 7,
                "response_format": {"type": "text"},
                "stream_options": {"include_usage": True},
            }
        },
    ],
)
def test_key_ignores_streaming_and_the_asked_model(changes: dict[str, Any]) -> None:
    assert cache_key("chat", request(**changes), "alice") == cache_key("chat", request(), "alice")


def test_key_separates_clients_unless_shared() -> None:
    alice = cache_key("chat", request(), "alice")
    bob = cache_key("chat", request(), "bob")
    shared = cache_key("chat", request(), None)
    assert len({alice, bob, shared}) == 3
    assert cache_key("chat", request(), None) == shared
    assert cache_key("chat", request(), "") != shared  # an empty name is still a name


# -- LRU, bytes, TTL, stats ---------------------------------------------------------------


def test_get_returns_what_put_stored() -> None:
    cache = ResponseCache(1_000_000, Clock())
    assert cache.get(key(1)) is None
    cache.put(key(1), answer(), ttl=60)
    assert cache.get(key(1)) == answer()
    assert key(1) in cache
    assert len(cache) == 1
    assert cache.stats == CacheStats(
        hits=1, misses=1, evictions=0, entries=1, bytes=size_of(answer())
    )


def test_eviction_is_least_recently_used_by_bytes() -> None:
    one = size_of(answer(rid="r0"))
    cache = ResponseCache(3 * one, Clock())
    for n in range(3):
        cache.put(key(n), answer(rid=f"r{n}"), ttl=60)
    assert cache.stats.bytes == 3 * one
    assert cache.get(key(0)) is not None  # 0 is now the most recently used; 1 is the least
    cache.put(key(3), answer(rid="r3"), ttl=60)
    assert key(1) not in cache
    assert [k in cache for k in map(key, (0, 2, 3))] == [True, True, True]
    assert cache.stats.evictions == 1
    assert cache.stats.bytes == 3 * one


def test_a_big_entry_evicts_as_many_as_it_needs_oldest_first() -> None:
    small = [answer(rid=f"s{n}") for n in range(5)]
    big = answer("word " * 200, rid="b")
    one = size_of(small[0])
    assert 2 * one < size_of(big) < 3 * one
    cache = ResponseCache(5 * one, Clock())
    for n, resp in enumerate(small):
        cache.put(key(n), resp, ttl=60)
    assert len(cache) == 5
    cache.put(key(99), big, ttl=60)
    assert cache.stats.bytes == 2 * one + size_of(big) <= cache.max_bytes
    assert [key(n) in cache for n in range(5)] == [False, False, False, True, True]
    assert key(99) in cache
    assert cache.stats.evictions == 3


def test_replacing_a_key_does_not_count_its_bytes_twice() -> None:
    cache = ResponseCache(1_000_000, Clock())
    cache.put(key(1), answer("first"), ttl=60)
    cache.put(key(1), answer("second answer"), ttl=60)
    assert cache.get(key(1)) == answer("second answer")
    assert cache.stats.entries == 1
    assert cache.stats.bytes == size_of(answer("second answer"))
    assert cache.stats.evictions == 0


def test_an_entry_larger_than_max_bytes_is_not_stored() -> None:
    resp = answer("x" * 1000)
    cache = ResponseCache(size_of(resp) - 1, Clock())
    cache.put(key(1), answer("small"), ttl=60)
    cache.put(key(2), resp, ttl=60)
    assert key(2) not in cache
    assert key(1) in cache  # nothing was evicted for it
    assert cache.stats.evictions == 0
    exact = ResponseCache(size_of(resp), Clock())
    exact.put(key(2), resp, ttl=60)
    assert exact.get(key(2)) == resp  # exactly max_bytes fits


def test_ttl_expires_exactly_at_the_edge() -> None:
    clock = Clock(100.0)
    cache = ResponseCache(1_000_000, clock)
    cache.put(key(1), answer(), ttl=30.0)
    clock.now = 129.999
    assert cache.get(key(1)) == answer()
    clock.now = 130.0
    assert cache.get(key(1)) is None
    assert key(1) not in cache  # dropped, not just hidden
    assert cache.stats == CacheStats(hits=1, misses=1, evictions=0, entries=0, bytes=0)


def test_a_hit_does_not_extend_the_ttl_and_a_put_does() -> None:
    clock = Clock(0.0)
    cache = ResponseCache(1_000_000, clock)
    cache.put(key(1), answer(), ttl=10.0)
    clock.now = 9.0
    assert cache.get(key(1)) is not None
    clock.now = 10.0
    assert cache.get(key(1)) is None
    cache.put(key(1), answer(), ttl=10.0)
    clock.now = 19.5
    assert cache.get(key(1)) is not None


def test_each_entry_keeps_its_own_ttl() -> None:
    clock = Clock(0.0)
    cache = ResponseCache(1_000_000, clock)
    cache.put(key(1), answer(), ttl=5.0)
    cache.put(key(2), answer(), ttl=50.0)
    clock.now = 6.0
    assert cache.get(key(1)) is None
    assert cache.get(key(2)) is not None


def test_expired_entries_make_room_without_counting_as_evictions() -> None:
    clock = Clock(0.0)
    one = size_of(answer())
    cache = ResponseCache(2 * one, clock)
    cache.put(key(1), answer(), ttl=5.0)
    cache.put(key(2), answer(), ttl=100.0)
    clock.now = 10.0
    cache.put(key(3), answer(), ttl=100.0)
    assert key(1) not in cache
    assert cache.stats.evictions == 0
    cache.put(key(4), answer(), ttl=100.0)
    assert key(2) not in cache
    assert cache.stats.evictions == 1


def test_a_non_positive_ttl_stores_nothing() -> None:
    cache = ResponseCache(1_000_000, Clock())
    cache.put(key(1), answer(), ttl=0)
    cache.put(key(2), answer(), ttl=-1)
    assert len(cache) == 0


def test_stats_count_hits_misses_and_survive_clear() -> None:
    cache = ResponseCache(1_000_000, Clock())
    cache.put(key(1), answer(), ttl=60)
    cache.put(key(2), answer(rid="two"), ttl=60)
    for k in (1, 1, 2, 3, 4):
        cache.get(key(k))
    assert cache.stats == CacheStats(
        hits=3,
        misses=2,
        evictions=0,
        entries=2,
        bytes=size_of(answer()) + size_of(answer(rid="two")),
    )
    cache.clear()
    assert cache.stats == CacheStats(hits=3, misses=2, evictions=0, entries=0, bytes=0)
    assert cache.get(key(1)) is None


def test_max_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        ResponseCache(0, Clock())


# -- replay and assemble ----------------------------------------------------------------

LONG = (
    "  The quick brown fox\tjumps over the lazy dog.\n\n"
    + " ".join(f"w{i}" for i in range(57))
    + " "
)

TOOL_ANSWER = GatewayResponse(
    id="chatcmpl-tools",
    model="gpt-4o",
    created=1_700_000_123,
    choices=(
        Choice(
            0,
            Message(
                "assistant",
                None,
                tool_calls=(
                    ToolCall("call_a", "weather", '{"city": "Paris"}'),
                    ToolCall("call_b", "time", ""),
                ),
            ),
            "tool_calls",
        ),
    ),
    usage=Usage(50, 20),
)


@pytest.mark.parametrize(
    "resp",
    [
        pytest.param(answer(), id="text"),
        pytest.param(answer(LONG), id="long-text"),
        pytest.param(answer(""), id="empty-text"),
        pytest.param(answer(usage=None), id="no-usage"),
        pytest.param(TOOL_ANSWER, id="tool-calls"),
        pytest.param(
            attrs.evolve(
                TOOL_ANSWER,
                choices=(
                    Choice(
                        0,
                        Message(
                            "assistant", "let me look", tool_calls=(ToolCall("c", "weather", "{}"),)
                        ),
                        "tool_calls",
                    ),
                    Choice(1, Message("assistant", "it is sunny"), "length"),
                ),
            ),
            id="text-and-tools-two-choices",
        ),
    ],
)
def test_replay_then_assemble_round_trips(resp: GatewayResponse) -> None:
    chunks = replay(resp)
    assert all((c.id, c.model, c.created) == (resp.id, resp.model, resp.created) for c in chunks)
    assert assemble(chunks) == resp
    # and through the wire, as a client would see it
    assert (
        assemble(chunk_from_wire(orjson.loads(orjson.dumps(chunk_to_wire(c)))) for c in chunks)
        == resp
    )


def test_replay_shape_of_a_text_answer() -> None:
    chunks = replay(answer(LONG))
    assert chunks[0].choices == (ChunkChoice(0, Delta(role="assistant")),)
    content = [c.choices[0].delta.content for c in chunks[1:-2]]
    assert "".join(c or "" for c in content) == LONG
    assert len(content) == 4  # 66 words in pieces of 20
    assert all(len((c or "").split()) <= REPLAY_WORDS for c in content)
    assert chunks[-2].choices == (ChunkChoice(0, Delta(), "stop"),)
    assert chunks[-1].choices == ()
    assert chunks[-1].usage == Usage(12, 34)
    assert [c.usage for c in chunks[:-1]] == [None] * (len(chunks) - 1)


def test_replay_shape_of_a_tool_call_answer() -> None:
    chunks = replay(TOOL_ANSWER)
    calls = [c.choices[0].delta.tool_calls for c in chunks[1:-2]]
    assert calls == [
        (ToolCallDelta(0, id="call_a", name="weather", arguments=""),),
        (ToolCallDelta(0, arguments='{"city": "Paris"}'),),
        (ToolCallDelta(1, id="call_b", name="time", arguments=""),),
    ]
    assert all(c.choices[0].delta.content is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "tool_calls"


def test_replay_without_usage_has_no_usage_chunk() -> None:
    chunks = replay(answer(usage=None))
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("resp", [answer(LONG), TOOL_ANSWER], ids=["text", "tool-calls"])
def test_replayed_chunks_are_what_the_openai_sdk_accepts(resp: GatewayResponse) -> None:
    state = ChatCompletionStreamState()
    for c in replay(resp):
        wire = chunk_to_wire(c)
        assert wire["object"] == "chat.completion.chunk"
        state.handle_chunk(ChatCompletionChunk.model_validate(wire))
    final = state.get_final_completion()
    expected = ChatCompletion.model_validate(response_to_wire(resp))
    assert final.id == expected.id
    assert final.model == expected.model
    assert final.created == expected.created
    assert final.usage == expected.usage
    got, want = final.choices[0], expected.choices[0]
    assert got.finish_reason == want.finish_reason
    assert got.message.content == want.message.content
    wanted_calls = want.message.tool_calls or []
    # The wire answer parses to the union of function and custom tool calls; ours are functions.
    assert all(isinstance(t, ChatCompletionMessageFunctionToolCall) for t in wanted_calls)
    assert [
        (t.id, t.function.name, t.function.arguments) for t in got.message.tool_calls or ()
    ] == [
        (t.id, t.function.name, t.function.arguments)
        for t in wanted_calls
        if isinstance(t, ChatCompletionMessageFunctionToolCall)
    ]


def chunk(*choices: ChunkChoice, usage: Usage | None = None) -> ChatChunk:
    return ChatChunk("s1", "m", 5, choices, usage)


def test_assemble_merges_an_upstream_stream() -> None:
    chunks = [
        chunk(ChunkChoice(0, Delta(role="assistant", content=""))),
        chunk(ChunkChoice(0, Delta(content="Checking"))),
        chunk(ChunkChoice(0, Delta(content=" now."))),
        chunk(ChunkChoice(0, Delta(tool_calls=(ToolCallDelta(0, "c0", "weather", ""),)))),
        chunk(ChunkChoice(0, Delta(tool_calls=(ToolCallDelta(1, "c1", "time", '{"tz"'),)))),
        chunk(ChunkChoice(0, Delta(tool_calls=(ToolCallDelta(0, arguments='{"city":'),)))),
        chunk(ChunkChoice(0, Delta(tool_calls=(ToolCallDelta(0, arguments=' "Oslo"}'),)))),
        chunk(ChunkChoice(0, Delta(tool_calls=(ToolCallDelta(1, arguments=': "UTC"}'),)))),
        chunk(ChunkChoice(0, Delta(), "tool_calls")),
        chunk(usage=Usage(3, 4)),
    ]
    assert assemble(chunks) == GatewayResponse(
        id="s1",
        model="m",
        created=5,
        choices=(
            Choice(
                0,
                Message(
                    "assistant",
                    "Checking now.",
                    tool_calls=(
                        ToolCall("c0", "weather", '{"city": "Oslo"}'),
                        ToolCall("c1", "time", '{"tz": "UTC"}'),
                    ),
                ),
                "tool_calls",
            ),
        ),
        usage=Usage(3, 4),
    )


def test_assemble_refuses_an_unfinished_stream() -> None:
    assert assemble([]) is None
    assert assemble([chunk(usage=Usage(1, 1))]) is None
    assert assemble([chunk(ChunkChoice(0, Delta(role="assistant", content="partial")))]) is None
    two = [
        chunk(ChunkChoice(0, Delta(content="a"), "stop")),
        chunk(ChunkChoice(1, Delta(content="b"))),
    ]
    assert assemble(two) is None  # one of two choices never finished


def test_assemble_keeps_a_refusal_and_replay_gives_it_back() -> None:
    chunks = [
        chunk(ChunkChoice(0, Delta(role="assistant", refusal="I can't "))),
        chunk(ChunkChoice(0, Delta(refusal="help with that."))),
        chunk(ChunkChoice(0, Delta(), "stop")),
    ]
    whole = assemble(chunks)
    assert whole is not None
    assert whole.choices[0].message.refusal == "I can't help with that."
    assert whole.choices[0].message.content is None
    assert assemble(replay(whole)) == whole


def test_assemble_joins_logprobs_and_replay_gives_them_back() -> None:
    def scored(text: str) -> dict[str, Any]:
        return {"content": [{"token": text, "logprob": -1.0}], "refusal": None}

    chunks = [
        chunk(ChunkChoice(0, Delta(role="assistant", content=""))),
        chunk(ChunkChoice(0, Delta(content="Hel"), logprobs=scored("Hel"))),
        chunk(ChunkChoice(0, Delta(content="lo"), logprobs=scored("lo"))),
        chunk(ChunkChoice(0, Delta(), "stop")),
    ]
    whole = assemble(chunks)
    assert whole is not None
    assert whole.choices[0].logprobs == {
        "content": [{"token": "Hel", "logprob": -1.0}, {"token": "lo", "logprob": -1.0}],
        "refusal": None,
    }
    assert assemble(replay(whole)) == whole


def test_a_replay_says_its_input_usage_up_front() -> None:
    usage = Usage(30, 9, cache_read_tokens=20, cache_write_tokens=4, reasoning_tokens=3)
    resp = GatewayResponse("r", "m", 1, (Choice(0, Message("assistant", "hi"), "stop"),), usage)
    chunks = replay(resp)
    assert chunks[0].start_usage == Usage(30, 0, cache_read_tokens=20, cache_write_tokens=4)
    assert all(c.start_usage is None for c in chunks[1:])
    assert chunks[-1].usage == usage


def test_assemble_accepts_a_generator() -> None:
    assembled = assemble(c for c in replay(answer()))
    assert assembled == answer()
