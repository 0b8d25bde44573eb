"""The response cache by property: what is stored comes back equal, as an answer or
replayed as a stream (through the OpenAI wire in any chunking) and reassembled; and no
sequence of puts, gets and expiries takes it over its byte bound.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs
import orjson
from hypothesis import given
from hypothesis import strategies as st

from adapters import (
    Choice,
    GatewayResponse,
    Message,
    OpenAIStreamDecoder,
    ToolCall,
    response_to_wire,
)
from router.http._openai_ingress import OpenAIStreamEncoder
from router.traffic._cache import ENTRY_OVERHEAD, ResponseCache, assemble, replay
from tests.strategies import FINISH, TEXT, USAGE, chunkings

# Text with runs of words and whitespace, long enough to replay as several chunks.
WORDY = st.lists(
    st.sampled_from(["w", "word", " ", "  ", "\n", "\t", "é", "😀"]) | TEXT, max_size=80
).map("".join)


#: OpenAI's logprobs object, as opaque as the cache keeps it.
LOGPROBS = st.fixed_dictionaries(
    {
        "content": st.lists(
            st.fixed_dictionaries({"token": TEXT, "logprob": st.floats(-20, 0)}), max_size=3
        ),
        "refusal": st.none(),
    }
)


@st.composite
def answers(draw: st.DrawFn) -> GatewayResponse:
    """A complete answer as a cache holds it: one to three choices in index order, each
    an assistant message with text (or none), tool calls and maybe a refusal and reasoning, and its
    finish reason, maybe the stop sequence it met, and maybe logprobs."""
    choices = tuple(
        Choice(
            i,
            Message(
                "assistant",
                draw(st.none() | WORDY),
                tool_calls=tuple(
                    draw(st.lists(st.builds(ToolCall, TEXT, TEXT, TEXT | WORDY), max_size=3))
                ),
                refusal=draw(st.none() | TEXT),
                reasoning_content=draw(st.none() | TEXT),
            ),
            draw(st.none() | FINISH),
            draw(st.none() | TEXT),
            draw(st.none() | LOGPROBS),
        )
        for i in range(draw(st.integers(1, 3)))
    )
    return GatewayResponse(
        id=draw(TEXT),
        model=draw(TEXT),
        created=draw(st.integers(0, 2**40)),
        choices=choices,
        usage=draw(st.none() | USAGE),
        system_fingerprint=draw(st.none() | TEXT),
        service_tier=draw(st.none() | TEXT),
    )


def as_replayed(resp: GatewayResponse) -> GatewayResponse:
    """What a replay stands for: a finish reason on every choice (a stream must end);
    the system fingerprint and service tier ride on every chunk, reasoning in a delta."""
    choices = tuple(attrs.evolve(c, finish_reason=c.finish_reason or "stop") for c in resp.choices)
    return attrs.evolve(resp, choices=choices)


@given(answers(), st.floats(0.001, 1e6))
def test_a_stored_answer_comes_back_equal(resp: GatewayResponse, ttl: float) -> None:
    cache = ResponseCache(10**7, lambda: 0.0)
    cache.put(b"k", resp, ttl)
    assert cache.get(b"k") == resp


@given(answers())
def test_a_replayed_answer_reassembles_to_itself(resp: GatewayResponse) -> None:
    assert assemble(replay(resp)) == as_replayed(resp)


@given(st.data(), answers())
def test_a_replay_sent_as_openai_events_reassembles_in_any_chunking(
    data: st.DataObject, resp: GatewayResponse
) -> None:
    encoder = OpenAIStreamEncoder(include_usage=True)
    raw = b"".join(encoder.feed(c) for c in replay(resp)) + encoder.done()
    decoder = OpenAIStreamDecoder()
    chunks = []
    for piece in data.draw(chunkings(raw)):
        chunks += decoder.feed(piece)
    chunks += decoder.close()
    whole = assemble(chunks)
    assert whole is not None
    # Named as OpenAI names answers (the ingress's part), else the same answer.
    assert whole.id.startswith("chatcmpl-")
    assert whole.created == (resp.created or whole.created) != 0
    # OpenAI's chunks have no place for a stop sequence (its finish reason is "stop").
    choices = tuple(attrs.evolve(c, stop_sequence=None) for c in as_replayed(resp).choices)
    expected = attrs.evolve(as_replayed(resp), choices=choices)
    assert attrs.evolve(whole, id=resp.id, created=resp.created) == expected


def size_of(resp: GatewayResponse) -> int:
    return len(orjson.dumps(response_to_wire(resp))) + ENTRY_OVERHEAD


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


KEYS = [b"a", b"b", b"c", b"d"]
# (operation, key, answer length, ttl, seconds to wait): answers of about 300 to 500
# bytes, a bound for none to five of them (mostly fewer than the keys, so that eviction
# decides), most ttls long enough for eviction rather than expiry to drop them.
OPS = st.lists(
    st.tuples(
        st.sampled_from(["put", "put", "get", "get", "wait"]),
        st.sampled_from(KEYS),
        st.integers(0, 200),
        st.sampled_from([-1.0, 0.0, 5.0, 60.0, 60.0, 60.0]),
        st.sampled_from([0.5, 1.0, 5.0, 10.0]),
    ),
    min_size=1,
    max_size=30,
)


def sized(n: int) -> GatewayResponse:
    return GatewayResponse("id", "m", 0, (Choice(0, Message("assistant", "x" * n), "stop"),))


@given(st.integers(250, 1600), OPS)
def test_the_byte_bound_holds_and_eviction_is_least_recently_used(
    max_bytes: int, ops: list[tuple[str, bytes, int, float, float]]
) -> None:
    clock = Clock()
    cache = ResponseCache(max_bytes, clock)
    # The model: key -> (answer, expires, size), least recently used first.
    model: OrderedDict[bytes, tuple[GatewayResponse, float, int]] = OrderedDict()
    for op, key, length, ttl, wait in ops:
        if op == "put":
            resp = sized(length)
            cache.put(key, resp, ttl)
            size = size_of(resp)
            if size <= max_bytes and ttl > 0:
                model.pop(key, None)
                while sum(s for _, _, s in model.values()) + size > max_bytes:
                    model.popitem(last=False)
                model[key] = (resp, clock.now + ttl, size)
        elif op == "get":
            held = model.get(key)
            if held is not None and clock.now >= held[1]:
                del model[key]
                held = None
            if held is not None:
                model.move_to_end(key)
            assert cache.get(key) == (held[0] if held else None)
        else:
            clock.now += wait
        assert cache.stats.bytes <= max_bytes
        assert cache.stats.bytes == sum(s for _, _, s in model.values())
        assert [k for k in KEYS if k in cache] == sorted(model)


@given(st.integers(1, 5), st.data(), st.integers(0, 300))
def test_a_hit_saves_its_entry_from_the_next_eviction(
    held: int, data: st.DataObject, length: int
) -> None:
    resp = sized(length)
    cache = ResponseCache(held * size_of(resp), lambda: 0.0)  # room for exactly `held`
    keys = [bytes([i]) for i in range(held + 1)]
    for key in keys[:-1]:
        cache.put(key, resp, 60.0)
    touched = data.draw(st.sampled_from(keys[:-1]))
    assert cache.get(touched) == resp
    cache.put(keys[-1], resp, 60.0)
    oldest = next(k for k in keys if k != touched)
    assert [k for k in keys if k not in cache] == ([oldest] if held > 1 else [touched])
    assert cache.stats.evictions == 1
