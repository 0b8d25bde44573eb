"""Bad input gets a clear error, in OpenAI's shape, and the daemon keeps serving."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx2
import pytest

from tests.conftest import RouterFactory, openai_client

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SIMULATED = """
[server]
max_body = "2KiB"

[providers.sim]
kind = "simulated"
latency = { median = "1ms", p99 = "2ms" }
seed = 7

[routes.chat]
fallback = ["sim:echo"]
"""

URL = "/v1/chat/completions"


async def post(url: str, content: bytes, **headers: str) -> httpx2.Response:
    async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:
        return await client.post(URL, content=content, headers=headers)


@pytest.mark.parametrize(
    ("body", "status", "param", "fragment"),
    [
        (b'{"model": "chat", "messages": [', 400, None, "not valid JSON"),
        (b"[1, 2]", 400, None, "JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "model", "'model'"),
        (b'{"model": "chat"}', 400, "messages", "'messages'"),
        (b'{"model": "chat", "messages": []}', 400, "messages", "non-empty"),
        (b'{"model": "chat", "messages": [{"role": "robot"}]}', 400, "messages[0].role", "role"),
        (
            b'{"model": "chat", "stream": "yes", "messages": [{"role": "user"}]}',
            400,
            "stream",
            "boolean",
        ),
        (
            b'{"model": "nope", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model",
            "GET /v1/models",
        ),
        (
            b'{"model": "ghost:gpt", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model",
            "not a route",
        ),
    ],
)
async def test_bad_request_bodies(
    start_router: RouterFactory, body: bytes, status: int, param: str | None, fragment: str
) -> None:
    async with start_router(SIMULATED) as url:
        response = await post(url, body)
        after = await post(
            url, b'{"model": "chat", "messages": [{"role": "user", "content": "ok"}]}'
        )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["param"] == param
    assert fragment in error["message"]
    assert response.headers["x-request-id"]
    assert after.status_code == 200  # still serving
    assert after.json()["choices"][0]["message"]["content"] == "ok"


async def test_oversized_body_by_length_and_by_bytes_read(start_router: RouterFactory) -> None:
    big = b'{"model": "chat", "messages": [{"role": "user", "content": "' + b"x" * 4096 + b'"}]}'

    async def chunked() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    async with start_router(SIMULATED) as url:
        by_length = await post(url, big)
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:
            by_bytes = await client.post(URL, content=chunked())  # no content-length
        after = await post(
            url, b'{"model": "chat", "messages": [{"role": "user", "content": "ok"}]}'
        )
    assert by_length.status_code == 413
    assert by_bytes.status_code == 413
    assert "2048 bytes" in by_length.json()["error"]["message"]
    assert after.status_code == 200


async def test_client_request_id_is_echoed(start_router: RouterFactory) -> None:
    async with start_router(SIMULATED) as url:
        response = await post(
            url,
            b'{"model": "chat", "messages": [{"role": "user", "content": "x"}]}',
            **{"x-request-id": "abc-123"},
        )
        bogus = await post(
            url,
            b'{"model": "chat", "messages": [{"role": "user", "content": "x"}]}',
            **{"x-request-id": "bad id with spaces"},
        )
    assert response.headers["x-request-id"] == "abc-123"
    assert bogus.headers["x-request-id"] != "bad id with spaces"


async def test_unknown_path_and_method(start_router: RouterFactory) -> None:
    async with start_router(SIMULATED) as url, httpx2.AsyncClient(base_url=url) as client:
        missing = await client.get("/v2/nothing")
        wrong = await client.get(URL)
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert missing.status_code == 404
    assert wrong.status_code == 405
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_wrong_method_on_a_chat_path_is_an_error_in_the_clients_format(
    start_router: RouterFactory,
) -> None:
    async with start_router(SIMULATED) as url, httpx2.AsyncClient(base_url=url) as client:
        openai = await client.get(URL)
        anthropic = await client.get("/v1/messages")
    assert openai.status_code == anthropic.status_code == 405
    assert openai.json()["error"]["type"] == "invalid_request_error"
    assert "takes POST" in openai.json()["error"]["message"]
    assert anthropic.json()["type"] == "error"  # Anthropic's shape, which its SDKs read
    assert anthropic.json()["error"]["type"] == "invalid_request_error"
    assert "takes POST" in anthropic.json()["error"]["message"]


async def test_shipped_config_serves_with_no_keys(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    shipped = (Path(__file__).parents[3] / "router.toml").read_text()
    shipped = shipped.replace('listen = ["127.0.0.1:8080"]', 'listen = ["127.0.0.1:0"]')
    async with start_router(shipped) as url, openai_client(url) as client:
        models = await client.models.list()
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hello router"}]
        )
        stream = await client.chat.completions.create(
            model="story", messages=[{"role": "user", "content": "go"}], stream=True
        )
        story = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        vectors = await client.embeddings.create(model="embed", input=["one", "two"])
        again = await client.embeddings.create(model="embed", input="two", encoding_format="float")
    assert {"chat", "story", "embed"} <= {m.id for m in models.data}
    assert answer.choices[0].message.content == "hello router"
    assert story.startswith("This is a simulated answer")
    assert [len(d.embedding) for d in vectors.data] == [256, 256]
    # The same text, the same vector (float32 through base64 by default, floats here).
    assert vectors.data[1].embedding == pytest.approx(again.data[0].embedding, rel=1e-6)


async def test_missing_secret_fails_start_with_the_reference(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rules import ConfigError

    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    toml = """
[providers.up]
kind = "openai"
api_key = "env:NO_SUCH_KEY_VAR"
[routes.chat]
fallback = ["up:gpt-4o"]
"""
    with pytest.RaisesGroup(
        pytest.RaisesExc(ConfigError, match="NO_SUCH_KEY_VAR"), flatten_subgroups=True
    ):
        async with start_router(toml):
            pass


OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


async def test_path_and_method_errors_have_openais_four_keys(start_router: RouterFactory) -> None:
    async with start_router(SIMULATED) as url, httpx2.AsyncClient(base_url=url) as client:
        missing = await client.get("/v2/nothing")
        wrong = await client.post("/healthz")
        model = await client.post("/v1/models/chat")
        reload = await client.get("/admin/reload")
    assert (missing.status_code, wrong.status_code, model.status_code) == (404, 405, 405)
    assert reload.status_code == 405
    for answer in (missing, wrong, model, reload):
        error = answer.json()["error"]
        assert set(error) == OPENAI_ERROR_KEYS, answer.url
        assert error["type"] == "invalid_request_error"
    assert missing.json()["error"]["code"] == "unknown_url"
    assert "no such endpoint: /v2/nothing" in missing.json()["error"]["message"]
    for answer in (wrong, model, reload):
        assert answer.json()["error"]["code"] == "method_not_allowed"
        assert "no such endpoint" not in answer.json()["error"]["message"]
    assert wrong.headers["allow"] == "GET"
    assert reload.headers["allow"] == "POST"
