"""OpenAI's embeddings format both ways, and the shared pieces: vectors, base64, parts,
joins and the split of a combined call's answer."""

from __future__ import annotations

import base64
import struct
from array import array
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import (
    EmbeddingRequest,
    EmbeddingResponse,
    InvalidRequest,
    SerializationError,
    Usage,
    embedding_request_from_wire,
    embedding_response_to_wire,
    join_embeddings,
    request_parts,
    share_tokens,
    split_embeddings,
)
from adapters._embeddings import decode_base64, encode_base64, vector_from_wire
from adapters._openai_embeddings import (
    embedding_request_to_wire,
    embedding_response_from_wire,
)

# -- a client's request ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "inputs"),
    [
        ("hello", ("hello",)),
        (["a", "b"], ("a", "b")),
        ([1, 2, 3], ((1, 2, 3),)),
        ([[1, 2], [3]], ((1, 2), (3,))),
    ],
)
def test_each_input_shape_is_read(raw: Any, inputs: tuple[Any, ...]) -> None:
    req = embedding_request_from_wire({"model": "e", "input": raw})
    assert req.inputs == inputs
    assert req.token_input == (not isinstance(inputs[0], str))
    assert req.encoding_format == "float"
    assert (req.dimensions, req.user, req.extra) == (None, None, {})


def test_the_parameters_are_read_and_others_kept_for_pass_through() -> None:
    body = {
        "model": "e",
        "input": "x",
        "encoding_format": "base64",
        "dimensions": 256,
        "user": "u-1",
        "truncate_prompt_tokens": 10,
        "ignored": None,
    }
    req = embedding_request_from_wire(body)
    assert (req.encoding_format, req.dimensions, req.user) == ("base64", 256, "u-1")
    assert req.extra == {"truncate_prompt_tokens": 10}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "e"}, "input"),
        ({"model": "e", "input": None}, "input"),
        ({"model": "e", "input": ""}, "input"),
        ({"model": "e", "input": []}, "input"),
        ({"model": "e", "input": ["a", ""]}, "input"),
        ({"model": "e", "input": ["a", 1]}, "input"),
        ({"model": "e", "input": [[1], "a"]}, "input"),
        ({"model": "e", "input": [[1], []]}, "input"),
        ({"model": "e", "input": [True, 2]}, "input"),
        ({"model": "e", "input": [-1]}, "input"),
        ({"model": "e", "input": [[1.5]]}, "input"),
        ({"model": "e", "input": {"text": "a"}}, "input"),
        ({"model": "e", "input": ["a"] * 2049}, "input"),
        ({"model": "e", "input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "e", "input": "a", "dimensions": 0}, "dimensions"),
        ({"model": "e", "input": "a", "dimensions": True}, "dimensions"),
        ({"model": "e", "input": "a", "dimensions": "256"}, "dimensions"),
        ({"model": "e", "input": "a", "user": 7}, "user"),
        ({"input": "a"}, "model"),
    ],
)
def test_a_malformed_request_names_its_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        embedding_request_from_wire(body)
    assert caught.value.param == param
    assert caught.value.status_hint == 400


def test_a_body_that_is_no_object_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        embedding_request_from_wire(["input"])


# -- an upstream's request and answer -------------------------------------------------


def test_upstreams_are_asked_for_floats_with_everything_the_client_sent() -> None:
    req = EmbeddingRequest("route", ((1, 2), (3,)), 64, "base64", "u", {"x": 1})
    assert embedding_request_to_wire(req, "text-embedding-3-small") == {
        "x": 1,
        "model": "text-embedding-3-small",
        "input": [[1, 2], [3]],
        "encoding_format": "float",
        "dimensions": 64,
        "user": "u",
    }


def test_an_answer_is_read_in_index_order_with_its_usage() -> None:
    raw = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [0.5, 0.25]},
            {"object": "embedding", "index": 0, "embedding": encode_base64([1.0, -2.0])},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 9, "total_tokens": 9},
    }
    resp = embedding_response_from_wire(raw, 2)
    assert resp.vectors == ((1.0, -2.0), (0.5, 0.25))
    assert resp.usage == Usage(9)
    assert resp.model == "text-embedding-3-small"


@pytest.mark.parametrize(
    "raw",
    [
        {"data": "nope"},
        {"data": [{"index": 0, "embedding": []}]},
        {"data": [{"index": 0, "embedding": ["x"]}]},
        {"data": [{"index": 0, "embedding": "***"}]},
        {"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]},
        {"data": [{"index": 1, "embedding": [1.0]}]},
        {"data": [{"index": 0, "embedding": [1.0]}, {"index": 2, "embedding": [1.0]}]},
        {"data": [{"index": 0, "embedding": [1.0]}]},  # one vector for two inputs
        [],
    ],
)
def test_a_bad_answer_is_a_serialization_error(raw: Any) -> None:
    count = 1 if isinstance(raw, dict) and len(raw.get("data") or ()) == 2 else 2
    with pytest.raises(SerializationError):
        embedding_response_from_wire(raw, count)


# -- the client's answer ------------------------------------------------------------------


def test_the_client_gets_openais_shape_in_floats() -> None:
    resp = EmbeddingResponse("m", ((0.5, 1.0), (2.0, 3.0)), Usage(4))
    assert embedding_response_to_wire(resp) == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": (0.5, 1.0)},
            {"object": "embedding", "index": 1, "embedding": (2.0, 3.0)},
        ],
        "model": "m",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }


def test_base64_is_little_endian_float32_as_the_sdk_decodes_it() -> None:
    resp = EmbeddingResponse("m", ((0.5, -1.25, 3.0),), Usage(1))
    wire = embedding_response_to_wire(resp, "base64")
    text = wire["data"][0]["embedding"]
    assert isinstance(text, str)
    assert struct.unpack("<3f", base64.b64decode(text)) == (0.5, -1.25, 3.0)
    # What openai-python does with it when numpy is absent:
    assert array("f", base64.b64decode(text)).tolist() == [0.5, -1.25, 3.0]


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1))
def test_base64_round_trips_every_float32(values: list[float]) -> None:
    assert decode_base64(encode_base64(values)) == tuple(values)


@pytest.mark.parametrize("raw", [None, {}, [], [[1.0]], [None], "YWJj", "***"])
def test_a_vector_of_another_kind_is_refused(raw: Any) -> None:
    with pytest.raises(SerializationError):
        vector_from_wire(raw)


# -- parts, joins and shares ------------------------------------------------------------


def test_a_request_is_cut_into_parts_in_order() -> None:
    req = EmbeddingRequest("m", ("a", "b", "c", "d", "e"))
    parts = request_parts(req, 2)
    assert [p.inputs for p in parts] == [("a", "b"), ("c", "d"), ("e",)]
    assert request_parts(req, 5) == [req]


def test_parts_join_back_in_order_with_their_usage() -> None:
    one = EmbeddingResponse("m", ((1.0,), (2.0,)), Usage(3), (1, 2))
    two = EmbeddingResponse("m", ((3.0,),), Usage(4), (4,))
    joined = join_embeddings([one, two])
    assert joined == EmbeddingResponse("m", ((1.0,), (2.0,), (3.0,)), Usage(7), (1, 2, 4))
    unknown = join_embeddings([one, EmbeddingResponse("m", ((3.0,),))])
    assert (unknown.usage, unknown.input_tokens) == (None, None)


@given(st.integers(0, 10_000), st.lists(st.integers(0, 500), min_size=1, max_size=20))
def test_shares_add_up_to_the_total(total: int, weights: list[int]) -> None:
    shares = share_tokens(total, weights)
    assert sum(shares) == total
    assert all(s >= 0 for s in shares)
    if sum(weights) > 0:
        for share, weight in zip(shares, weights, strict=True):
            assert abs(share - total * weight / sum(weights)) < 1


def test_a_combined_answer_is_split_by_per_input_tokens_when_known() -> None:
    resp = EmbeddingResponse("m", ((1.0,), (2.0,), (3.0,)), Usage(10), (2, 3, 5))
    first, second = split_embeddings(resp, [1, 2], [100, 1])
    assert first == EmbeddingResponse("m", ((1.0,),), Usage(2), (2,))
    assert second == EmbeddingResponse("m", ((2.0,), (3.0,)), Usage(8), (3, 5))


def test_a_combined_answer_is_split_in_proportion_to_the_estimates() -> None:
    resp = EmbeddingResponse("m", ((1.0,), (2.0,), (3.0,)), Usage(10))
    shares = split_embeddings(resp, [1, 1, 1], [1, 1, 3])
    assert [s.usage for s in shares] == [Usage(2), Usage(2), Usage(6)]
    assert [s.vectors for s in shares] == [((1.0,),), ((2.0,),), ((3.0,),)]
    assert [s.usage for s in split_embeddings(EmbeddingResponse("m", ((1.0,),)), [1], [1])] == [
        None
    ]


def test_a_combined_answer_missing_a_vector_fails_every_member() -> None:
    with pytest.raises(SerializationError):
        split_embeddings(EmbeddingResponse("m", ((1.0,),)), [1, 1], [1, 1])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(
    st.fixed_dictionaries(
        {"model": st.just("e"), "input": JSON},
        optional={"encoding_format": JSON, "dimensions": JSON, "user": JSON},
    )
)
def test_any_body_is_read_or_refused_by_name(body: dict[str, Any]) -> None:
    """Whatever a client sends is an EmbeddingRequest whose inputs are all texts or all
    token arrays, or an InvalidRequest naming the parameter; nothing else escapes."""
    try:
        req = embedding_request_from_wire(body)
    except InvalidRequest as exc:
        refused: InvalidRequest | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.param in {"input", "encoding_format", "dimensions", "user"}
        return
    assert req.inputs
    kinds = {isinstance(i, str) for i in req.inputs}
    assert len(kinds) == 1
    assert all(i for i in req.inputs)
