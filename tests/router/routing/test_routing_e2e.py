"""Routing rules end to end: the daemon over loopback, the official SDK as client,
a fake OpenAI upstream. Timing rules have exact tests on MockClock; these check the
same behaviour through real sockets, with deadlines short enough to keep them quick."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
import openai
import pytest
import trio

from tests.conftest import RouterFactory, anthropic_client, openai_client

if TYPE_CHECKING:
    from openai.types.chat import (
        ChatCompletionChunk,
        ChatCompletionContentPartParam,
        ChatCompletionMessageParam,
    )

    from tests.fakes.openai_upstream import FakeOpenAI

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def config(upstream: str, routes: str, defaults: str = "retries = 0") -> str:
    return f"""
[defaults]
{defaults}

[providers.up]
kind = "openai"
base_url = "{upstream}"

[providers.backup]
kind = "openai"
base_url = "{upstream}"

{routes}
"""


async def test_fallback_on_timeout(start_router: RouterFactory, fake_openai: FakeOpenAI) -> None:
    routes = '[routes.r]\nfallback = ["up:silent", "backup:gpt-4o"]\nfirst_token_timeout = "200ms"'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(model="r", messages=HI, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "echo: hi"
    assert [r.body["model"] for r in fake_openai.received] == ["silent", "gpt-4o"]


async def test_fallback_on_context_length(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    routes = '[routes.r]\nfallback = ["up:fail-ctx", "backup:gpt-4o-128k"]'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(model="r", messages=HI)
    assert raw.headers["x-router-target"] == "backup:gpt-4o-128k"


async def test_no_fallback_on_400(start_router: RouterFactory, fake_openai: FakeOpenAI) -> None:
    routes = '[routes.r]\nfallback = ["up:fail-400", "backup:gpt-4o"]'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        with pytest.raises(openai.BadRequestError, match="temperature"):
            await client.chat.completions.create(model="r", messages=HI)
    assert [r.body["model"] for r in fake_openai.received] == ["fail-400"]


async def test_an_upstream_400_keeps_its_param_and_code(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    routes = '[routes.r]\nfallback = ["up:fail-400"]'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="r", messages=HI)
    assert (caught.value.param, caught.value.code) == ("temperature", "invalid_value")
    assert caught.value.type == "invalid_request_error"


async def test_stream_cut_before_first_chunk_fails_over(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    routes = '[routes.r]\nfallback = ["up:break-before-content", "backup:gpt-4o"]'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="r",
            messages=HI,
            stream=True,
        )
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text == "echo: hi"
    assert raw.headers["x-router-target"] == "backup:gpt-4o"


@pytest.mark.parametrize(
    ("model", "match"), [("break-mid-stream", "upstream"), ("malformed", "malformed")]
)
async def test_with_resume_off_a_stream_broken_after_its_first_chunk_is_an_error(
    start_router: RouterFactory, fake_openai: FakeOpenAI, model: str, match: str
) -> None:
    routes = f'[routes.r]\nfallback = ["up:{model}", "backup:gpt-4o"]\nresume = "off"'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="r", messages=[{"role": "user", "content": "a b c d"}], stream=True
        )
        with pytest.raises(openai.APIError, match=match):
            _ = [c async for c in stream]
    assert [r.body["model"] for r in fake_openai.received] == [model]  # committed: no failover


@pytest.mark.parametrize("model", ["break-mid-stream", "malformed"])
async def test_a_stream_broken_after_its_first_chunk_is_resumed_whole(
    start_router: RouterFactory, fake_openai: FakeOpenAI, model: str
) -> None:
    routes = f'[routes.r]\nfallback = ["up:{model}", "backup:gpt-4o"]'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="r",
            messages=[{"role": "user", "content": "a b c d"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in stream]
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as admin:
            admin_status = (await admin.get("/admin/status")).json()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: a b c d"  # one whole answer, nothing repeated
    # Usage is the sum: the backup's report plus an estimate of the broken attempt
    # (its prompt "a b c d" is 2 tokens at 4 characters a token, plus what it delivered).
    usage = chunks[-1].usage
    assert usage is not None
    prompt, completion = fake_openai.USAGE
    assert usage.prompt_tokens == prompt + 2
    assert usage.completion_tokens > completion
    assert len({c.id for c in chunks}) == 1
    assert [r.body["model"] for r in fake_openai.received] == [model, "gpt-4o"]
    # An OpenAI target does not continue a prefill: the backup answered the original
    # request anew, and only what follows the delivered text was forwarded.
    assert fake_openai.received[1].body["messages"] == [{"role": "user", "content": "a b c d"}]
    assert (
        admin_status["targets"]["backup:gpt-4o"]["resumed"],
        admin_status["targets"][f"up:{model}"]["failures"],
    ) == (1, 1)


async def test_stall_ends_the_stream_with_an_error(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = config(
        fake_openai.url,
        '[routes.r]\nfallback = ["up:stall-mid-stream"]',
        'retries = 0\nstall_timeout = "200ms"',
    )
    async with start_router(toml) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(model="r", messages=HI, stream=True)
        received: list[str] = []

        async def read() -> None:
            async for chunk in stream:
                if chunk.choices:
                    received.append(chunk.choices[0].delta.content or "")

        with pytest.raises(openai.APIError, match="stalled"):
            await read()
    assert "".join(received) == "first second"


async def test_429_with_retry_after_is_retried(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = config(fake_openai.url, '[routes.r]\nfallback = ["up:flaky-429"]', "retries = 2")
    async with start_router(toml) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(model="r", messages=HI)
    assert raw.headers["x-router-attempts"] == "2"
    assert fake_openai.calls["flaky-429"] == 2


async def test_429_everywhere_is_a_429_with_retry_after(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    routes = '[routes.r]\nfallback = ["up:fail-429", "backup:fail-429"]'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="r", messages=HI)
    assert caught.value.response.headers["retry-after"] == "2"


async def test_breaker_opens_and_recovers(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    defaults = 'retries = 0\ncircuit = { failures = 2, successes = 1, open_for = "300ms" }'
    routes = '[routes.r]\nfallback = ["up:toggle-a", "backup:gpt-4o"]'
    fake_openai.down = True
    async with (
        start_router(config(fake_openai.url, routes, defaults)) as url,
        openai_client(url) as client,
    ):

        async def ask() -> str:
            raw = await client.chat.completions.with_raw_response.create(model="r", messages=HI)
            return raw.headers["x-router-target"]

        assert [await ask() for _ in range(2)] == ["backup:gpt-4o"] * 2
        tried = fake_openai.calls["toggle-a"]
        assert tried == 2
        assert await ask() == "backup:gpt-4o"
        assert fake_openai.calls["toggle-a"] == tried  # open: the broken target sees nothing
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as admin:
            state = (await admin.get("/admin/status")).json()
        assert state["targets"]["up:toggle-a"]["state"] == "open"
        fake_openai.down = False
        await trio.sleep(0.35)  # past open_for: the next request is the probe
        assert await ask() == "up:toggle-a"
        assert await ask() == "up:toggle-a"  # closed again


async def test_every_circuit_open_is_a_fast_503(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    defaults = 'retries = 0\ncircuit = { failures = 1, successes = 1, open_for = "60s" }'
    routes = '[routes.r]\nfallback = ["up:fail-500", "backup:fail-503"]'
    async with (
        start_router(config(fake_openai.url, routes, defaults)) as url,
        openai_client(url) as client,
    ):
        with pytest.raises(openai.APIStatusError) as first:
            await client.chat.completions.create(model="r", messages=HI)
        with pytest.raises(openai.APIStatusError) as second:
            await client.chat.completions.create(model="r", messages=HI)
    assert first.value.status_code == 502
    assert second.value.status_code == 503
    assert "circuit" in second.value.message
    assert len(fake_openai.received) == 2  # the second request reached no upstream


async def test_health_probe_opens_the_circuit_before_any_request(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = f"""
[defaults]
retries = 0
circuit = {{ failures = 1, successes = 1, open_for = "60s" }}

[providers.up]
kind = "openai"
base_url = "{fake_openai.url}"
health = {{ interval = "50ms", timeout = "1s" }}

[routes.r]
fallback = ["up:toggle-x"]
"""
    fake_openai.down = True
    async with (
        start_router(toml) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        with trio.fail_after(10):  # a hang guard
            while (await client.get("/readyz")).status_code != 503:  # noqa: ASYNC110 - the daemon is polled over HTTP; there is no event to await
                await trio.sleep(0.05)
        state = (await client.get("/admin/status")).json()
    assert state["targets"]["up:toggle-x"]["state"] == "open"
    assert "health probe" in state["targets"]["up:toggle-x"]["last_error"]
    assert all(r.path == "/v1/models" for r in fake_openai.received)


async def test_split_arm_is_sticky_and_reported(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    routes = '[routes.ab]\nsplit = { "up:model-a" = 50, "backup:model-b" = 50 }\nsticky = "header:x-user-id"'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        arms = {}
        for user in ("alice", "bob", "carol", "dave", "erin", "frank"):
            seen = set()
            for _ in range(3):
                raw = await client.chat.completions.with_raw_response.create(
                    model="ab",
                    messages=HI,
                    extra_headers={"x-user-id": user},
                )
                seen.add(raw.headers["x-router-arm"])
            assert len(seen) == 1  # same user, same arm
            arms[user] = seen.pop()
    assert set(arms.values()) <= {"up:model-a", "backup:model-b"}


async def test_capabilities_from_config_route_images_around(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = f"""
[defaults]
retries = 0

[providers.blind]
kind = "openai"
base_url = "{fake_openai.url}"
capabilities = {{ vision = false }}

[providers.sighted]
kind = "openai"
base_url = "{fake_openai.url}"
model_capabilities = {{ "text-only" = {{ vision = false }} }}

[routes.r]
fallback = ["blind:gpt-4o", "sighted:gpt-4o"]

[routes.none]
fallback = ["blind:gpt-4o", "sighted:text-only"]
"""
    picture: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
    ]
    async with start_router(toml) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="r",
            messages=[{"role": "user", "content": picture}],
        )
        with pytest.raises(openai.BadRequestError, match="cannot take images") as refused:
            await client.chat.completions.create(
                model="none",
                messages=[{"role": "user", "content": picture}],
            )
        text = await client.chat.completions.with_raw_response.create(model="none", messages=HI)
    assert raw.headers["x-router-target"] == "sighted:gpt-4o"
    assert raw.headers["x-router-attempts"] == "1"
    assert refused.value.code == "unsupported_capability"
    assert text.headers["x-router-target"] == "blind:gpt-4o"


@pytest.mark.parametrize("transport", ["h11", "httpx"])
async def test_hedged_stream_over_each_transport(
    start_router: RouterFactory, fake_openai: FakeOpenAI, transport: str
) -> None:
    toml = f"""
[defaults]
retries = 0
hedge_budget = 1.0

[providers.up]
kind = "openai"
base_url = "{fake_openai.url}"
pool = {{ transport = "{transport}" }}

[routes.r]
fallback = ["up:silent", "up:gpt-4o"]
hedge = {{ after = "100ms", max = 1 }}
"""
    async with start_router(toml) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="r", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
        # The hedge's winning stream was opened in an attempt's task and read to its end
        # by the request's; the silent loser was cancelled and its connection closed.
        with trio.fail_after(5):  # a hang guard
            await fake_openai.disconnected.wait()
        again = await client.chat.completions.create(model="up:gpt-4o", messages=HI)
    assert text == "echo: a b c"
    assert raw.headers["x-router-target"] == "up:gpt-4o"
    assert raw.headers["x-router-hedges"] == "1"
    assert again.choices[0].message.content == "echo: hi"


@pytest.mark.parametrize("model", ["break-mid-stream", "malformed"])
async def test_the_anthropic_ingress_sees_one_whole_answer_after_a_break(
    start_router: RouterFactory, fake_openai: FakeOpenAI, model: str
) -> None:

    routes = f'[routes.r]\nfallback = ["up:{model}", "backup:gpt-4o"]'
    async with (
        start_router(config(fake_openai.url, routes)) as url,
        anthropic_client(url) as client,
        client.messages.stream(
            model="r", max_tokens=100, messages=[{"role": "user", "content": "a b c d"}]
        ) as stream,
    ):
        message = await stream.get_final_message()
    assert [b.text for b in message.content if b.type == "text"] == ["echo: a b c d"]
    assert [r.body["model"] for r in fake_openai.received] == [model, "gpt-4o"]


async def test_a_regeneration_that_differs_ends_the_stream_with_the_error(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    # stall-mid-stream answers "first second"; the backup would answer "echo: ...".
    routes = '[routes.r]\nfallback = ["up:stall-mid-stream", "backup:gpt-4o"]'
    toml = config(fake_openai.url, routes, 'stall_timeout = "200ms"')
    received: list[str] = []

    async def read(stream: openai.AsyncStream[ChatCompletionChunk]) -> None:
        async for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)

    async with start_router(toml) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(model="r", messages=HI, stream=True)
        with pytest.raises(openai.APIError, match="stalled"):
            await read(stream)
    assert "".join(received) == "first second"  # the broken stream's text, nothing spliced
    assert [r.body["model"] for r in fake_openai.received] == ["stall-mid-stream", "gpt-4o"]
