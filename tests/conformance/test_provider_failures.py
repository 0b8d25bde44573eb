"""Every provider kind's failures, through the daemon, reach the OpenAI SDK alike:
a client's mistakes as the same 4xx, the operator's as a 502 that names no secret,
failures before the first chunk fall back, and a stream broken later raises."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.conformance.conftest import kinds, text_of

if TYPE_CHECKING:
    from tests.conformance._case import ProviderCase
    from tests.conformance.conftest import Gateway

X: Any = [{"role": "user", "content": "x"}]


@kinds()
async def test_client_errors_mapped(gateway: Gateway, case: ProviderCase) -> None:
    async with gateway(case) as served:
        create = served.client.chat.completions.create
        with pytest.raises(openai.BadRequestError) as bad:
            await create(model="p:fail-400", messages=X)
        with pytest.raises(openai.RateLimitError) as limited:
            await create(model="p:fail-429", messages=X)
        with pytest.raises(openai.NotFoundError) as missing:
            await create(model="p:fail-404", messages=X)
        if case.context:
            with pytest.raises(openai.BadRequestError) as too_long:
                await create(model="p:fail-ctx", messages=X)
            assert too_long.value.code == "context_length_exceeded"
    assert "temperature" in bad.value.message
    assert limited.value.response.headers.get("retry-after") == case.retry_after
    assert missing.value.code == "model_not_found"


@kinds()
async def test_refused_credentials_are_a_502_naming_no_secret(
    gateway: Gateway, case: ProviderCase
) -> None:
    async with gateway(case) as served:
        with pytest.raises(openai.InternalServerError) as caught:
            await served.client.chat.completions.create(model=f"wrong:{case.model}", messages=X)
    # The upstream refused the operator's credentials: the operator's problem, never a 4xx.
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_authentication_failed"
    assert "refused the configured credentials" in caught.value.message
    assert case.credentials.secret not in caught.value.response.text
    assert len(served.fake.received) == 1  # it did reach the fake, which refused it


@kinds()
async def test_upstream_faults_are_502(gateway: Gateway, case: ProviderCase) -> None:
    status, message = case.overloaded
    async with gateway(case) as served:
        for code in (500, *case.operator):
            with pytest.raises(openai.InternalServerError) as caught:
                await served.client.chat.completions.create(model=f"p:fail-{code}", messages=X)
            assert caught.value.status_code == 502
        with pytest.raises(openai.InternalServerError) as overloaded:
            await served.client.chat.completions.create(model=f"p:fail-{status}", messages=X)
    assert overloaded.value.status_code == 502
    assert message in overloaded.value.message


@kinds()
async def test_failures_before_the_first_chunk_fall_back(
    gateway: Gateway, case: ProviderCase
) -> None:
    overloaded = case.overloaded[0]
    routes = [
        f'[routes.{name}]\nfallback = ["p:{first}", "p:{case.model}"]'
        for name, first in [
            ("r500", "fail-500"),
            ("busy", f"fail-{overloaded}"),
            ("cut", "break-before-content"),
        ]
    ]
    async with gateway(case, *routes) as served:
        create = served.client.chat.completions.with_raw_response.create
        raw = await create(model="r500", messages=[{"role": "user", "content": "hello"}])
        busy = await served.stream("busy", "a b")
        cut = await create(model="cut", messages=X, stream=True)
        text = text_of([c async for c in cut.parse()])
    assert raw.parse().choices[0].message.content == "echo: hello"
    assert raw.headers["x-router-target"] == f"p:{case.model}"
    assert raw.headers["x-router-attempts"] == "2"
    assert text_of(busy) == "echo: a b"
    assert text == "echo: x"
    assert cut.headers["x-router-target"] == f"p:{case.model}"


@kinds()
async def test_every_target_failed_is_502_naming_attempts(
    gateway: Gateway, case: ProviderCase
) -> None:
    overloaded = case.overloaded[0]
    route = f'[routes.doomed]\nfallback = ["p:fail-500", "p:fail-{overloaded}"]'
    async with gateway(case, route) as served:
        with pytest.raises(openai.APIStatusError) as caught:
            await served.client.chat.completions.create(model="doomed", messages=X)
    assert caught.value.status_code == 502
    error = caught.value.body
    assert isinstance(error, dict)
    assert [a["target"] for a in error["attempts"]] == ["p:fail-500", f"p:fail-{overloaded}"]
    assert [a["status"] for a in error["attempts"]] == [500, overloaded]


@kinds(lambda case: case.blocked)
async def test_blocked_prompt_is_a_content_filter_400(gateway: Gateway, case: ProviderCase) -> None:
    assert case.blocked is not None
    model, reason = case.blocked
    async with gateway(case) as served:
        with pytest.raises(openai.BadRequestError) as caught:
            await served.client.chat.completions.create(model=f"p:{model}", messages=X)
    assert caught.value.code == "content_filter"
    assert reason in caught.value.message


@kinds()
@pytest.mark.parametrize("cut", ["break-mid-stream", "truncated", "error-mid-stream"])
async def test_stream_broken_after_content_raises(
    gateway: Gateway, case: ProviderCase, cut: str
) -> None:
    match, text = {
        "break-mid-stream": ("upstream", "echo: one"),
        "truncated": (case.truncated, "echo: one two three four"),
        "error-mid-stream": (case.stream_error, "echo:"),
    }[cut]
    async with gateway(case) as served:
        chunks = await served.client.chat.completions.create(
            model=f"p:{cut}",
            messages=[{"role": "user", "content": "one two three four"}],
            stream=True,
        )
        received: list[str] = []

        async def read() -> None:
            async for chunk in chunks:
                received.append(text_of([chunk]))

        with pytest.raises(openai.APIError, match=re.escape(match)):
            await read()
        # and the daemon keeps serving
        answer = await served.client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "still there?"}]
        )
    assert "".join(received) == text
    assert answer.choices[0].message.content == "echo: still there?"
