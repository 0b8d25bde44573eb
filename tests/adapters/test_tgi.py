"""Text Generation Inference's less-used paths: sampling settings as TGI's parameters,
the answer in its list form, token counts from the prefill, errors in the taxonomy,
and stream events it skips or refuses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import (
    ContextLengthExceeded,
    GatewayRequest,
    Message,
    Overloaded,
    ProviderInternalError,
    SerializationError,
    StreamError,
    Usage,
)
from adapters._tgi import TGIAdapter, tgi_error

REQ = GatewayRequest(model="m", messages=(Message("user", "hi"),))


def parameters(**fields: Any) -> dict[str, Any]:
    request = TGIAdapter("http://tgi/", api_key="hf_x").build_request(
        GatewayRequest(model="m", messages=(Message("user", "hi"),), **fields), "m"
    )
    assert request.url == "http://tgi/generate"
    assert ("authorization", "Bearer hf_x") in request.headers
    parsed: dict[str, Any] = orjson.loads(request.body)["parameters"]
    return parsed


def test_sampling_settings_become_tgis_parameters() -> None:
    got = parameters(max_tokens=9, temperature=0.0, top_p=1.0, stop=("\n",), extra={"seed": 4})
    assert got == {
        "details": True,
        "return_full_text": False,
        "max_new_tokens": 9,
        "do_sample": False,  # temperature 0: greedy, which TGI says this way
        "stop": ["\n"],
        "seed": 4,
    }  # top_p 1 is no filter: not sent (TGI refuses it)
    got = parameters(temperature=0.7, top_p=0.9, extra={"seed": "x"})
    assert (got["temperature"], got["top_p"]) == (0.7, 0.9)
    assert "seed" not in got
    assert "hf_x" not in repr(TGIAdapter("http://tgi", api_key="hf_x"))


def test_an_answer_in_a_list_with_prefill_details() -> None:
    body = [
        {
            "generated_text": "ok",
            "details": {"finish_reason": "eos_token", "generated_tokens": 1, "prefill": [{}, {}]},
        }
    ]
    resp = TGIAdapter("http://tgi").parse_response(200, (), orjson.dumps(body))
    assert resp.choices[0].message.content == "ok"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == Usage(2, 1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": "x"}, "no 'generated_text'"),
        ({"generated_text": "x", "details": {"generated_tokens": "many"}}, "malformed details"),
    ],
)
def test_an_answer_it_cannot_read_is_refused(body: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        TGIAdapter("http://tgi").parse_response(200, (), orjson.dumps(body))


def test_errors_map_to_the_taxonomy() -> None:
    too_long = (
        b'{"error": "inputs tokens + max_new_tokens must be <= 4096", "error_type": "validation"}'
    )
    assert isinstance(tgi_error(422, too_long), ContextLengthExceeded)
    failed = tgi_error(424, b'{"error": "CUDA error"}')
    assert isinstance(failed, ProviderInternalError)
    assert failed.message == "CUDA error"
    generation = tgi_error(500, b'{"error": "x", "error_type": "incomplete_generation"}')
    assert isinstance(generation, ProviderInternalError)
    busy = tgi_error(429, b'{"error": "Model is overloaded", "error_type": "overloaded"}')
    assert isinstance(busy, Overloaded)
    assert busy.retry_after is None
    assert tgi_error(503, b"").message == "upstream answered HTTP 503"


def event(**data: Any) -> bytes:
    return f"data: {orjson.dumps(data).decode()}\n\n".encode()


def test_the_stream_skips_special_and_empty_events_and_what_follows_the_end() -> None:
    decoder = TGIAdapter("http://tgi").stream_decoder()
    chunks = decoder.feed(
        b"data: \n\n"
        + event(token={"text": "<s>", "special": True})
        + event(token={"text": "yes", "special": False})
        + event(token={"text": ""}, details={"finish_reason": "length", "generated_tokens": 1})
        + event(token={"text": "late"})
    )
    chunks += decoder.close()
    texts = [c.choices[0].delta.content for c in chunks if c.choices]
    assert texts == ["", "yes", None]  # the opening, the text, the finish
    assert chunks[2].choices[0].finish_reason == "length"
    assert chunks[3].usage == Usage(0, 1)  # no input_length nor prefill: 0 in
    assert len(chunks) == 4  # nothing of "late", after the end


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (event(error="Request failed during generation"), "error mid-stream: Request failed"),
        (event(details={"generated_tokens": "?"}), "malformed details"),
    ],
)
def test_a_stream_event_it_cannot_use_raises(data: bytes, message: str) -> None:
    with pytest.raises(StreamError, match=message):
        TGIAdapter("http://tgi").stream_decoder().feed(data)
