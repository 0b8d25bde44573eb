"""``POST /v1/embeddings`` over loopback with the official OpenAI SDK: fallback, batching
of concurrent requests into one upstream call, client keys, rate limits, budgets, the
response cache, pass-through of other parameters, and bad requests in OpenAI's shape."""

from __future__ import annotations

import io
from contextlib import asynccontextmanager
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
from tests.fakes._vectors import fake_vector
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI, running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from openai.types import CreateEmbeddingResponse

    from tests.conftest import RouterFactory

MODEL = "text-embedding-3-small"


def config(openai_url: str, *tables: str, ollama_url: str = "http://127.0.0.1:9") -> str:
    return "\n".join(
        [
            "[defaults]\nretries = 0\n",
            f'[providers.up]\nkind = "openai"\nbase_url = "{openai_url}"\n',
            f'[providers.local]\nkind = "ollama"\nbase_url = "{ollama_url}"\n',
            f'[providers.vllm]\nkind = "vllm"\nbase_url = "{openai_url}"\n',
            *tables,
        ]
    )


@asynccontextmanager
async def ollama() -> AsyncIterator[FakeOllama]:
    fake = FakeOllama()
    async with running(fake) as url:
        fake.url = url
        yield fake


def calls(fake: FakeOpenAI | FakeOllama) -> list[Any]:
    return [r for r in fake.received if r.method == "POST"]


async def post(url: str, body: Any, **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:
        if isinstance(body, bytes):
            return await client.post("/v1/embeddings", content=body, headers=headers)
        return await client.post("/v1/embeddings", json=body, headers=headers)


# -- routing ------------------------------------------------------------------------------


async def test_a_failing_target_falls_back_to_the_next(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    table = f'[routes.embed]\nfallback = ["up:fail-500", "up:{MODEL}"]\n'
    async with start_router(config(fake_openai.url, table)) as url, openai_client(url) as client:
        raw = await client.embeddings.with_raw_response.create(model="embed", input="hello")
    assert raw.parse().data[0].embedding == fake_vector("hello")
    assert raw.headers["x-router-target"] == f"up:{MODEL}"
    assert raw.headers["x-router-attempts"] == "2"


async def test_a_target_that_cannot_take_the_input_is_skipped_unsent(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    """Ollama embeds text only: token arrays go on to OpenAI, and Ollama is never called."""
    async with ollama() as local:
        table = f'[routes.embed]\nfallback = ["local:nomic-embed-text", "up:{MODEL}"]\n'
        toml = config(fake_openai.url, table, ollama_url=local.url)
        async with start_router(toml) as url, openai_client(url) as client:
            tokens = await client.embeddings.with_raw_response.create(
                model="embed", input=[[1, 2], [3]], encoding_format="float"
            )
            text = await client.embeddings.with_raw_response.create(model="embed", input="hi")
    assert [d.embedding for d in tokens.parse().data] == [fake_vector([1, 2]), fake_vector([3])]
    assert tokens.headers["x-router-target"] == f"up:{MODEL}"
    assert text.headers["x-router-target"] == "local:nomic-embed-text"
    assert [r.body["input"] for r in calls(local)] == [["hi"]]


# -- batching -------------------------------------------------------------------------


async def test_concurrent_requests_share_one_upstream_call(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    # max = 3: the third request fills the batch, which goes at once (the wait is long).
    table = f'[routes.embed]\nfallback = ["up:{MODEL}"]\nbatch = {{ max = 3, wait = "1s" }}\n'
    answers: dict[str, CreateEmbeddingResponse] = {}
    async with start_router(config(fake_openai.url, table)) as url, openai_client(url) as client:

        async def ask(text: str) -> None:
            answers[text] = await client.embeddings.create(model="embed", input=text)

        async with trio.open_nursery() as nursery:
            for text in ("alpha one", "beta", "gamma two three"):
                nursery.start_soon(ask, text)
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
            status = (await raw.get("/admin/status")).json()
    [call] = calls(fake_openai)
    assert sorted(call.body["input"]) == ["alpha one", "beta", "gamma two three"]
    assert status["traffic"]["embedding_batches"] == {"calls": 1, "requests": 3, "inputs": 3}
    for text, answer in answers.items():
        assert [d.embedding for d in answer.data] == [fake_vector(text)]
        assert answer.model == MODEL
    # The call's 6 tokens (words, as the fake counts), shared by the requests' estimates.
    assert sum(a.usage.prompt_tokens for a in answers.values()) == 6


async def test_requests_that_differ_in_dimensions_are_not_combined(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    table = f'[routes.embed]\nfallback = ["up:{MODEL}"]\nbatch = {{ max = 2, wait = "20ms" }}\n'
    async with (
        start_router(config(fake_openai.url, table)) as url,
        openai_client(url) as client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(lambda: client.embeddings.create(model="embed", input="a"))
        nursery.start_soon(lambda: client.embeddings.create(model="embed", input="b", dimensions=3))
    assert sorted(tuple(c.body["input"]) for c in calls(fake_openai)) == [("a",), ("b",)]


# -- keys, limits, budgets ------------------------------------------------------------


KEYS = """
[routes.chat]
fallback = ["up:gpt-4o"]

[prices]
"up:text-embedding-3-small" = { input = 1_000_000, output = 0 }

[keys.chat-only]
secret = "env:CHAT_KEY"
routes = ["chat"]

[keys.slow]
secret = "env:SLOW_KEY"
limits = { rpm = 1 }

[keys.budgeted]
secret = "env:BUDGET_KEY"
budget = { usd = 2, per = "day" }
"""


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CHAT", "SLOW", "BUDGET"):
        monkeypatch.setenv(f"{name}_KEY", f"{name.lower()}-key-1")


def keyed(url: str, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


@pytest.mark.usefixtures("keys")
async def test_client_keys_limits_and_budgets_hold_for_embeddings(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    table = f'[routes.embed]\nfallback = ["up:{MODEL}"]\n' + KEYS
    async with start_router(config(fake_openai.url, table)) as url:
        async with keyed(url, "wrong") as nobody:
            with pytest.raises(openai.AuthenticationError):
                await nobody.embeddings.create(model="embed", input="x")
        async with keyed(url, "chat-key-1") as chat_only:
            with pytest.raises(openai.PermissionDeniedError):
                await chat_only.embeddings.create(model="embed", input="x")
        async with keyed(url, "slow-key-1") as slow:
            await slow.embeddings.create(model="embed", input="x")
            with pytest.raises(openai.RateLimitError) as limited:
                await slow.embeddings.create(model="embed", input="x")
        async with keyed(url, "budget-key-1") as budgeted:
            # "one two three": 3 tokens as the fake counts, at a dollar a token.
            await budgeted.embeddings.create(model="embed", input="one two three")
            with pytest.raises(openai.RateLimitError) as spent:
                await budgeted.embeddings.create(model="embed", input="x")
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
            status = (await raw.get("/admin/status")).json()
    assert limited.value.code == "key_rate_limited"
    assert spent.value.code == "budget_exhausted"
    assert status["traffic"]["budgets"]["budgeted"]["spent_day"] == 3.0
    assert len(calls(fake_openai)) == 2  # the refused requests cost the upstream nothing


# -- the cache ------------------------------------------------------------------------


async def test_a_repeat_is_served_from_the_cache_in_either_encoding(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    table = f'[routes.embed]\nfallback = ["up:{MODEL}"]\ncache = {{ ttl = "1m" }}\n'
    async with start_router(config(fake_openai.url, table)) as url, openai_client(url) as client:
        create = client.embeddings.with_raw_response.create
        first = await create(model="embed", input=["a", "b"], encoding_format="float")
        again = await create(model="embed", input=["a", "b"])  # base64 this time
        other = await create(model="embed", input=["a", "b"], dimensions=2)
        fresh = await create(
            model="embed", input=["a", "b"], extra_headers={"cache-control": "no-cache"}
        )
    assert [r.headers["x-router-cache"] for r in (first, again, other, fresh)] == [
        "miss",
        "hit",
        "miss",
        "miss",
    ]
    assert [d.embedding for d in again.parse().data] == [fake_vector("a"), fake_vector("b")]
    assert again.parse().usage.prompt_tokens == first.parse().usage.prompt_tokens
    assert len(calls(fake_openai)) == 3


# -- parameters -----------------------------------------------------------------------


async def test_other_parameters_pass_to_compatible_hosts_and_are_refused_elsewhere(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with ollama() as local:
        tables = (
            f'[routes.compat]\nfallback = ["vllm:{MODEL}"]\n',
            '[routes.local]\nfallback = ["local:nomic-embed-text"]\n',
        )
        toml = config(fake_openai.url, *tables, ollama_url=local.url)
        extra = {"truncate_prompt_tokens": 16}
        async with start_router(toml) as url, openai_client(url) as client:
            await client.embeddings.create(model="compat", input="x", user="u-7", extra_body=extra)
            with pytest.raises(openai.BadRequestError) as refused:
                await client.embeddings.create(model="local", input="x", extra_body=extra)
    [sent] = calls(fake_openai)
    assert (sent.body["truncate_prompt_tokens"], sent.body["user"]) == (16, "u-7")
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.param == "truncate_prompt_tokens"
    assert calls(local) == []


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "embed", "input": ""}, 400, "input"),
        ({"model": "embed", "input": []}, 400, "input"),
        ({"model": "embed", "input": 5}, 400, "input"),
        ({"model": "embed", "input": ["a", 1]}, 400, "input"),
        ({"model": "embed", "input": "a", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"model": "embed", "input": "a", "dimensions": -1}, 400, "dimensions"),
        ({"input": "a"}, 400, "model"),
        (b'{"model": "embed", "input": ', 400, None),
        ({"model": "nowhere", "input": "a"}, 404, "model"),
    ],
)
async def test_a_bad_request_gets_openais_error_shape(
    start_router: RouterFactory, fake_openai: FakeOpenAI, body: Any, status: int, param: str | None
) -> None:
    table = f'[routes.embed]\nfallback = ["up:{MODEL}"]\n'
    async with (
        start_router(config(fake_openai.url, table)) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as raw,
    ):
        answer = await post(url, body)
        method = await raw.get("/v1/embeddings")
    assert answer.status_code == status
    error = answer.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert method.status_code == 405
    assert calls(fake_openai) == []


async def test_metrics_count_embeddings(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    table = f'[routes.embed]\nfallback = ["up:{MODEL}"]\n'
    async with start_router(config(fake_openai.url, table)) as url, openai_client(url) as client:
        await client.embeddings.create(model="embed", input="one two")
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
            page = (await raw.get("/metrics")).text
    lines = page.splitlines()
    assert any(
        line.startswith("llm_router_requests_total{")
        and 'route="embed"' in line
        and 'outcome="ok"' in line
        for line in lines
    )
    assert f'llm_router_tokens_total{{direction="in",target="up:{MODEL}"}} 2.0' in lines


async def test_the_access_log_records_an_embeddings_request() -> None:
    config = parse_config(SIMULATED, kinds=provider_kinds())
    runtime = Runtime(compile_routes(config), Engine(build_upstreams(config)))
    lines = io.StringIO()
    log = AccessLog(lines)
    app = App(runtime, observer=Observability(access_log=log))
    async with running(app) as url, httpx2.AsyncClient(base_url=url, trust_env=False) as client:
        answer = await client.post("/v1/embeddings", json={"model": "embed", "input": "a b c"})
    log.flush()
    assert answer.status_code == 200
    (line,) = [orjson.loads(text) for text in lines.getvalue().splitlines()]
    assert (line["path"], line["status"], line["route"]) == ("/v1/embeddings", 200, "embed")
    assert (line["target"], line["tokens_in"]) == ("sim:embed", 3)


SIMULATED = """
[providers.sim]
kind = "simulated"
latency = { median = "1ms", p99 = "2ms" }

[routes.embed]
fallback = ["sim:embed"]
"""
