"""``POST /v1/completions`` over loopback with the official OpenAI SDK: the body passed to
OpenAI-format targets as it came (model replaced), answers and streams passed back,
fallback, targets without the API skipped (a clear 400 when none has it), broken
streams, keys, budgets, metrics and the access log."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import orjson
import pytest
import trio

from adapters import provider_kinds
from router import App, Engine, Runtime
from router.ops._accesslog import AccessLog
from router.ops._observability import Observability
from router.upstream._providers import build_upstreams
from rules import compile_routes, parse_config
from tests.conftest import openai_client
from tests.fakes._base import running
from tests.fakes._text_completions import completion_text
from tests.fakes.azure_upstream import FakeAzure

if TYPE_CHECKING:
    from tests.conftest import RouterFactory
    from tests.fakes.anthropic_upstream import FakeAnthropic
    from tests.fakes.openai_upstream import FakeOpenAI

MODEL = "gpt-3.5-turbo-instruct"


def config(openai_url: str, *tables: str, anthropic_url: str = "http://127.0.0.1:9") -> str:
    return "\n".join(
        [
            "[defaults]\nretries = 0\n",
            f'[providers.up]\nkind = "openai"\nbase_url = "{openai_url}"\n',
            f'[providers.vllm]\nkind = "vllm"\nbase_url = "{openai_url}"\n',
            f'[providers.groq]\nkind = "groq"\nbase_url = "{openai_url}"\n',
            f'[providers.claude]\nkind = "anthropic"\nbase_url = "{anthropic_url}"\n'
            'api_key = "env:ANTHROPIC_TEST_KEY"\n',
            *tables,
        ]
    )


ROUTE = f'[routes.text]\nfallback = ["up:{MODEL}"]\n'


def calls(fake: FakeOpenAI | FakeAnthropic) -> list[Any]:
    return [r for r in fake.received if r.method == "POST"]


# -- answers ------------------------------------------------------------------------


async def test_a_completion_passes_through_with_the_model_replaced(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url, ROUTE)) as url, openai_client(url) as client:
        raw = await client.completions.with_raw_response.create(
            model="text",
            prompt=["Say hi", "Say bye"],
            max_tokens=7,
            temperature=0.2,
            top_p=0.9,
            n=2,
            best_of=3,
            stop=["\n"],
            suffix="!",
            echo=True,
            logprobs=2,
            user="u-1",
            extra_body={"seed": 5},
        )
    answer = raw.parse()
    assert raw.headers["x-router-target"] == f"up:{MODEL}"
    assert answer.object == "text_completion"
    assert [c.text for c in answer.choices] == [
        completion_text("Say hi", echo=True),
        completion_text("Say hi", echo=True),
        completion_text("Say bye", echo=True),
        completion_text("Say bye", echo=True),
    ]
    assert answer.choices[0].logprobs is not None
    assert answer.choices[0].logprobs.tokens == ["Say", " hi", " echo:", " Say", " hi"]
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == 4
    [sent] = calls(fake_openai)
    assert sent.path == "/v1/completions"
    assert sent.body == {
        "model": MODEL,
        "prompt": ["Say hi", "Say bye"],
        "max_tokens": 7,
        "temperature": 0.2,
        "top_p": 0.9,
        "n": 2,
        "best_of": 3,
        "stop": ["\n"],
        "suffix": "!",
        "echo": True,
        "logprobs": 2,
        "user": "u-1",
        "seed": 5,
    }


async def test_token_array_prompts_pass_as_they_are(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url, ROUTE)) as url, openai_client(url) as client:
        one = await client.completions.create(model="text", prompt=[1, 2, 3])
        two = await client.completions.create(model="text", prompt=[[1, 2], [3]])
    assert [c.text for c in one.choices] == [completion_text("tokens 1 2 3")]
    assert [c.text for c in two.choices] == [
        completion_text("tokens 1 2"),
        completion_text("tokens 3"),
    ]
    assert [r.body["prompt"] for r in calls(fake_openai)] == [[1, 2, 3], [[1, 2], [3]]]


async def test_a_stream_passes_through_and_ends_with_done(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url, ROUTE)) as url, openai_client(url) as client:
        stream = await client.completions.create(model="text", prompt="Say hi", stream=True)
        chunks = [chunk async for chunk in stream]
        asked = await client.completions.create(
            model="text", prompt="Say hi", stream=True, stream_options={"include_usage": True}
        )
        with_usage = [chunk async for chunk in asked]
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
            body = {"model": "text", "prompt": "Say hi", "stream": True}
            wire = (await raw.post("/v1/completions", json=body)).text
    assert "".join(c.choices[0].text for c in chunks if c.choices) == completion_text("Say hi")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.object == "text_completion" and c.model == MODEL for c in chunks)
    # The gateway asks for usage (to charge it); the client sees it only if it asked.
    assert all(c.usage is None for c in chunks)
    assert with_usage[-1].choices == []
    assert with_usage[-1].usage is not None
    assert with_usage[-1].usage.completion_tokens == 3
    sent = calls(fake_openai)
    assert all(r.body["stream_options"] == {"include_usage": True} for r in sent)
    assert wire.endswith("data: [DONE]\n\n")


async def test_an_azure_deployment_gets_its_own_path_and_no_model(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TEST_KEY", "azure-fake-key")
    fake = FakeAzure()
    async with running(fake) as azure_url:
        toml = "\n".join(
            [
                "[defaults]\nretries = 0\n",
                f'[providers.az]\nkind = "azure"\nbase_url = "{azure_url}"\n'
                'api_key = "env:AZURE_TEST_KEY"\napi_version = "2024-10-21"\n',
                '[routes.text]\nfallback = ["az:instruct"]\n',
            ]
        )
        async with start_router(toml) as url, openai_client(url) as client:
            answer = await client.completions.create(model="text", prompt="Say hi")
            stream = await client.completions.create(model="text", prompt="Say hi", stream=True)
            streamed = "".join([c.choices[0].text async for c in stream if c.choices])
    assert answer.choices[0].text == streamed == completion_text("Say hi")
    sent = [r for r in fake.received if r.method == "POST"]
    assert {r.path for r in sent} == {"/openai/deployments/instruct/completions"}
    assert all(r.query["api-version"] == "2024-10-21" and "model" not in r.body for r in sent)


# -- routing ------------------------------------------------------------------------


async def test_a_failing_target_falls_back_to_the_next(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    table = f'[routes.text]\nfallback = ["up:fail-500", "up:{MODEL}"]\n'
    async with start_router(config(fake_openai.url, table)) as url, openai_client(url) as client:
        raw = await client.completions.with_raw_response.create(model="text", prompt="hi")
        stream = await client.completions.create(model="text", prompt="hi", stream=True)
        streamed = "".join([c.choices[0].text async for c in stream if c.choices])
    assert raw.parse().choices[0].text == streamed == completion_text("hi")
    assert (raw.headers["x-router-target"], raw.headers["x-router-attempts"]) == (
        f"up:{MODEL}",
        "2",
    )


async def test_targets_without_the_api_are_skipped_unsent(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    table = (
        '[routes.text]\nfallback = ["claude:claude-haiku-4-5", "groq:llama-3.1-8b", '
        f'"vllm:{MODEL}"]\n'
    )
    toml = config(fake_openai.url, table, anthropic_url=fake_anthropic.url)
    async with start_router(toml) as url, openai_client(url) as client:
        raw = await client.completions.with_raw_response.create(model="text", prompt="hi")
    assert raw.headers["x-router-target"] == f"vllm:{MODEL}"
    assert calls(fake_anthropic) == []
    assert [r.body["model"] for r in calls(fake_openai)] == [MODEL]  # never groq's


async def test_a_route_of_anthropic_targets_only_is_a_clear_400(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    table = '[routes.claude]\nfallback = ["claude:claude-sonnet-4-5"]\n'
    toml = config(fake_openai.url, table, anthropic_url=fake_anthropic.url)
    async with start_router(toml) as url, openai_client(url) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.completions.create(model="claude", prompt="hi")
        with pytest.raises(openai.BadRequestError) as refused_stream:
            await client.completions.create(model="claude", prompt="hi", stream=True)
    for error in (refused.value, refused_stream.value):
        assert error.status_code == 400
        assert error.code == "unsupported_capability"
        assert "no text completions" in error.message
    assert calls(fake_anthropic) == []


@pytest.mark.parametrize("model", ["break-mid-stream", "error-mid-stream", "truncated"])
async def test_a_broken_stream_ends_with_an_error_the_sdk_raises(
    start_router: RouterFactory, fake_openai: FakeOpenAI, model: str
) -> None:
    table = f'[routes.text]\nfallback = ["up:{model}"]\n'
    async with (
        start_router(config(fake_openai.url, table)) as url,
        openai_client(url) as client,
        httpx2.AsyncClient(base_url=url, trust_env=False) as raw,
    ):
        stream = await client.completions.create(model="text", prompt="one two three", stream=True)
        got: list[str] = []
        async with stream:  # closed at the end, broken or not
            with pytest.raises(openai.APIError):  # noqa: PT012 (raised by the last chunk)
                async for chunk in stream:
                    got += [c.text for c in chunk.choices]
        body = {"model": "text", "prompt": "one two three", "stream": True}
        wire = (await raw.post("/v1/completions", json=body)).text
    assert got  # part of the answer came (or all of it, without its finish: truncated)
    assert "[DONE]" not in wire
    assert orjson.loads(wire.strip().rsplit("data: ", 1)[1])["error"]["code"] == "stream_error"


async def test_a_stream_that_breaks_before_content_moves_on(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    table = f'[routes.text]\nfallback = ["up:break-before-content", "up:{MODEL}"]\n'
    async with start_router(config(fake_openai.url, table)) as url, openai_client(url) as client:
        stream = await client.completions.create(model="text", prompt="hi", stream=True)
        text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert text == completion_text("hi")


@pytest.mark.parametrize("stream", [False, True])
async def test_a_client_that_leaves_cancels_the_upstream_call(
    start_router: RouterFactory, fake_openai: FakeOpenAI, stream: bool
) -> None:
    table = '[routes.text]\nfallback = ["up:silent"]\n'
    async with (
        start_router(config(fake_openai.url, table)) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        async with trio.open_nursery() as nursery:

            async def request() -> None:
                body = {"model": "text", "prompt": "x", "stream": stream}
                await client.post("/v1/completions", json=body)

            nursery.start_soon(request)
            await fake_openai.request_seen.wait()
            nursery.cancel_scope.cancel()  # the client hangs up
        with trio.fail_after(1):
            await fake_openai.disconnected.wait()


# -- bad requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "text"}, 400, "prompt"),
        ({"model": "text", "prompt": []}, 400, "prompt"),
        ({"model": "text", "prompt": [1, "a"]}, 400, "prompt"),
        ({"model": "text", "prompt": "a", "n": 0}, 400, "n"),
        ({"model": "text", "prompt": "a", "n": 3, "best_of": 2}, 400, "best_of"),
        ({"model": "text", "prompt": "a", "stream": "yes"}, 400, "stream"),
        ({"prompt": "a"}, 400, "model"),
        (b'{"model": "text", "prompt": ', 400, None),
        ({"model": "nowhere", "prompt": "a"}, 404, "model"),
    ],
)
async def test_a_bad_request_gets_openais_error_shape(
    start_router: RouterFactory, fake_openai: FakeOpenAI, body: Any, status: int, param: str | None
) -> None:
    async with (
        start_router(config(fake_openai.url, ROUTE)) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as raw,
    ):
        if isinstance(body, bytes):
            answer = await raw.post("/v1/completions", content=body)
        else:
            answer = await raw.post("/v1/completions", json=body)
        method = await raw.get("/v1/completions")
    assert answer.status_code == status
    error = answer.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["param"] == param
    assert method.status_code == 405
    assert calls(fake_openai) == []


# -- keys, budgets, metrics, the access log -----------------------------------------

BUDGET = f"""
[prices]
"up:{MODEL}" = {{ input = 1_000_000, output = 1_000_000 }}

[keys.budgeted]
secret = "env:BUDGET_KEY"
budget = {{ usd = 10, per = "day" }}
"""


async def test_usage_is_charged_to_budgets_and_counted_in_metrics(
    start_router: RouterFactory, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUDGET_KEY", "budget-key-1")
    async with (
        start_router(config(fake_openai.url, ROUTE, BUDGET)) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="budget-key-1", max_retries=0) as client,
        httpx2.AsyncClient(base_url=url, trust_env=False) as raw,
    ):
        # "one two": 2 prompt and 3 completion tokens as the fake counts, a dollar each.
        await client.completions.create(model="text", prompt="one two", max_tokens=4)
        stream = await client.completions.create(
            model="text", prompt="one two", max_tokens=4, stream=True
        )
        _ = [chunk async for chunk in stream]
        with pytest.raises(openai.RateLimitError) as spent:
            await client.completions.create(model="text", prompt="x")
        status = (await raw.get("/admin/status")).json()
        page = (await raw.get("/metrics")).text
    assert spent.value.code == "budget_exhausted"
    assert status["traffic"]["budgets"]["budgeted"]["spent_day"] == 10.0
    lines = page.splitlines()
    assert f'llm_router_tokens_total{{direction="in",target="up:{MODEL}"}} 4.0' in lines
    assert f'llm_router_tokens_total{{direction="out",target="up:{MODEL}"}} 6.0' in lines
    assert any(
        line.startswith("llm_router_requests_total{")
        and 'route="text"' in line
        and 'outcome="ok"' in line
        and line.endswith(" 2.0")
        for line in lines
    )
    assert len(calls(fake_openai)) == 2


async def test_the_access_log_records_a_completion(fake_openai: FakeOpenAI) -> None:
    config = parse_config(f'[providers.up]\nkind = "openai"\nbase_url = "{fake_openai.url}"\n'
                          + ROUTE, kinds=provider_kinds())  # fmt: skip
    upstreams = build_upstreams(config)
    runtime = Runtime(compile_routes(config), Engine(upstreams))
    lines = io.StringIO()
    log = AccessLog(lines)
    app = App(runtime, observer=Observability(access_log=log))
    try:
        async with running(app) as url, httpx2.AsyncClient(base_url=url, trust_env=False) as c:
            answer = await c.post("/v1/completions", json={"model": "text", "prompt": "a b"})
    finally:
        for upstream in upstreams.values():
            await upstream.aclose()
    log.flush()
    assert answer.status_code == 200
    (line,) = [orjson.loads(text) for text in lines.getvalue().splitlines()]
    assert (line["path"], line["status"], line["route"]) == ("/v1/completions", 200, "text")
    assert (line["target"], line["tokens_in"], line["tokens_out"]) == (f"up:{MODEL}", 2, 3)
