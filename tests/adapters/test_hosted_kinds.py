"""The hosted-inference kinds' pure parts: their settings as ``check`` reports them, the
prompt templates, and the jobs Replicate and RunPod answer with."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import (
    GatewayRequest,
    Message,
    ProviderInternalError,
    SerializationError,
    StreamError,
    Timeout,
    UnsupportedCapability,
    adapter_factory,
    provider_kinds,
)
from adapters._prompt import render
from adapters._replicate import ReplicateAdapter
from adapters._runpod import RunPodAdapter
from adapters._runpod_output import answer_from_output
from adapters._tgi import TGIAdapter
from rules import ConfigError, parse_config

ROUTE = '[routes.chat]\nfallback = ["p:m"]\n'
REQ = GatewayRequest(model="m", messages=(Message("user", "hi"),))


def errors(block: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        parse_config(f"[providers.p]\n{block}\n{ROUTE}", kinds=provider_kinds())
    return info.value.errors


def test_check_names_each_bad_setting_by_its_key_path() -> None:
    assert errors('kind = "replicate"\nwait = "2m"\nmax_tokens_input = "max tokens"') == (
        "providers.p.wait: must be between 1s and 60s",
        "providers.p.max_tokens_input: must be an input name (letters, digits, _)",
    )
    assert errors('kind = "runpod"\napi = "grpc"') == (
        "providers.p.endpoint_id: required key missing",
        'providers.p.api: unknown value "grpc" (allowed: openai, native)',
    )
    assert errors('kind = "runpod"\nendpoint_id = "a/b"') == (
        "providers.p.endpoint_id: must be a RunPod endpoint id (letters, digits, - and _)",
    )
    assert errors('kind = "huggingface"\ntemplate = "vicuna"\ncolour = 1') == (
        'providers.p.template: unknown value "vicuna" (allowed: chatml, llama3, plain)',
        "providers.p.colour: unknown key",
    )


def test_defaults_follow_the_chosen_api() -> None:
    kinds = provider_kinds()
    hf = parse_config(f'[providers.p]\nkind = "huggingface"\n{ROUTE}', kinds=kinds)
    tgi = parse_config(f'[providers.p]\nkind = "huggingface"\napi = "tgi"\n{ROUTE}', kinds=kinds)
    ai21 = parse_config(f'[providers.p]\nkind = "ai21"\n{ROUTE}', kinds=kinds)
    assert hf.providers["p"].base_url == "https://router.huggingface.co/v1"  # type: ignore[attr-defined]
    assert tgi.providers["p"].base_url == "http://127.0.0.1:8080"  # type: ignore[attr-defined]
    assert ai21.providers["p"].base_url == "https://api.ai21.com/studio/v1"  # type: ignore[attr-defined]


def test_runpod_openai_route_is_under_the_endpoint() -> None:
    adapter: Any = adapter_factory("runpod")("p", {"endpoint_id": "abc", "api_key": "k"})
    assert adapter.url == "https://api.runpod.ai/v2/abc/openai/v1/chat/completions"
    native: Any = adapter_factory("runpod")("p", {"endpoint_id": "abc", "api": "native"})
    assert isinstance(native, RunPodAdapter)


def test_templates() -> None:
    messages = (
        Message("system", "S"),
        Message("user", "U"),
        Message("assistant", "A"),
        Message("user", "V"),
    )
    assert render(messages, "llama3", "x") == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nV<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    # A trailing assistant message is left open: the model continues it.
    prefilled = (Message("user", "U"), Message("assistant", "Once"))
    assert render(prefilled, "chatml", "x").endswith("<|im_start|>assistant\nOnce")
    assert render(prefilled, "plain", "x") == "User: U\n\nAssistant: Once"
    with pytest.raises(UnsupportedCapability):
        render((Message("tool", "18C", tool_call_id="c1"),), "plain", "x")


def prediction(status: str, **more: Any) -> bytes:
    base = "https://api.replicate.com/v1/predictions/p1"
    urls = {
        "get": base,
        "cancel": base + "/cancel",
        "stream": "https://stream.replicate.com/v1/f/x",
    }
    return orjson.dumps({"id": "p1", "status": status, "urls": urls, **more})


def test_replicate_jobs_by_status() -> None:
    adapter = ReplicateAdapter("https://api.replicate.com/v1", "r8_k")
    running = adapter.parse_job(REQ, "m", 201, (), prediction("processing"))
    assert running.running
    assert running.poll is not None
    assert running.poll.url == "https://api.replicate.com/v1/predictions/p1"
    assert running.cancel is not None
    assert running.cancel.method == "POST"
    assert running.stream is not None
    assert ("cache-control", "no-store") in running.stream.headers
    metrics = {"input_token_count": 4, "output_token_count": 2}
    done = adapter.parse_job(
        REQ, "m", 200, (), prediction("succeeded", output=["Hel", "lo"], metrics=metrics)
    )
    assert done.answer is not None
    assert done.answer.choices[0].message.content == "Hello"
    assert done.answer.usage is not None
    assert done.answer.usage.total_tokens == 6
    failed = adapter.parse_job(REQ, "m", 200, (), prediction("failed", error="boom"))
    assert isinstance(failed.error, ProviderInternalError)


def test_replicate_follows_no_url_outside_its_domain() -> None:
    adapter = ReplicateAdapter("https://api.replicate.com/v1", "r8_k")
    evil = orjson.dumps(
        {"id": "p1", "status": "processing", "urls": {"get": "https://evil.example/p1"}}
    )
    with pytest.raises(SerializationError, match="outside its domain"):
        adapter.parse_job(REQ, "m", 201, (), evil)
    with pytest.raises(SerializationError):
        adapter.parse_job(REQ, "m", 201, (), b'{"status": "dreaming"}')


STREAM = (
    b"event: output\nid: 1\ndata: Hel\n\n"
    b"event: output\nid: 2\ndata: lo\ndata: world\n\n"
    b"event: logs\ndata: step 1\n\n"
    b"event: done\ndata: {}\n\n"
)


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_replicate_stream_at_every_split(cut: int) -> None:
    decoder = ReplicateAdapter("https://api.replicate.com/v1").stream_decoder()
    chunks = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) + decoder.close()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello\nworld"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_replicate_stream_that_ends_early_raises() -> None:
    cut = ReplicateAdapter("https://api.replicate.com/v1").stream_decoder()
    cut.feed(b"event: output\ndata: a\n\n")
    with pytest.raises(StreamError):
        cut.close()
    canceled = ReplicateAdapter("https://api.replicate.com/v1").stream_decoder()
    with pytest.raises(StreamError):
        canceled.feed(b'event: done\ndata: {"reason": "canceled"}\n\n')


TGI_STREAM = (
    b'data:{"index":1,"token":{"id":1,"text":"Hi","logprob":0,"special":false},'
    b'"generated_text":null,"details":null}\n\n'
    b'data:{"index":2,"token":{"id":2,"text":"</s>","logprob":0,"special":true},'
    b'"generated_text":"Hi","details":{"finish_reason":"length","generated_tokens":2,'
    b'"input_length":5}}\n\n'
)


@pytest.mark.parametrize("cut", range(0, len(TGI_STREAM) + 1, 7))
def test_tgi_stream_at_every_split(cut: int) -> None:
    decoder = TGIAdapter("http://tgi").stream_decoder()
    chunks = decoder.feed(TGI_STREAM[:cut]) + decoder.feed(TGI_STREAM[cut:]) + decoder.close()
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 2)


def test_runpod_jobs_and_outputs() -> None:
    adapter = RunPodAdapter("https://api.runpod.ai/v2", "ep1", "k")
    queued = adapter.parse_job(REQ, "m", 200, (), b'{"id": "j1", "status": "IN_QUEUE"}')
    assert queued.poll is not None
    assert queued.poll.url == "https://api.runpod.ai/v2/ep1/status/j1"
    timed_out = adapter.parse_job(REQ, "m", 200, (), b'{"id": "j1", "status": "TIMED_OUT"}')
    assert isinstance(timed_out.error, Timeout)
    assert answer_from_output("plain").choices[0].message.content == "plain"
    legacy = answer_from_output([{"choices": [{"tokens": ["a", "b"]}], "usage": {"output": 2}}])
    assert legacy.choices[0].message.content == "ab"
    assert legacy.usage is not None
    assert legacy.usage.completion_tokens == 2
    with pytest.raises(ProviderInternalError):
        answer_from_output([{"error": {"message": "vLLM returned HTTP 400"}}])
