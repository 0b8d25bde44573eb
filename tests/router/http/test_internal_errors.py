"""A failure of ours anywhere gets a JSON 500 in the client's format, never the server's
bare non-JSON 500, and the access log records the 500 the client got."""

from __future__ import annotations

import io
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import orjson
import pytest

from adapters import provider_kinds
from router import App, Engine, Runtime
from router.http import _app, _exchange
from router.ops._accesslog import AccessLog
from router.ops._observability import Observability
from router.upstream._providers import build_upstreams
from rules import compile_routes, parse_config
from tests.fakes._base import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from router.routing._request import RequestTrace

CONFIG = """
[providers.sim]
kind = "simulated"
latency = { median = "1ms", p99 = "2ms" }

[routes.chat]
fallback = ["sim:echo"]

[routes.embed]
fallback = ["sim:embed"]
"""

HI = [{"role": "user", "content": "hi"}]


@asynccontextmanager
async def serving() -> AsyncIterator[tuple[App, httpx2.AsyncClient, AccessLog, io.StringIO]]:
    """The app over loopback HTTP (hypercorn), with its access log in memory."""
    config = parse_config(CONFIG, kinds=provider_kinds())
    runtime = Runtime(compile_routes(config), Engine(build_upstreams(config)))
    stream = io.StringIO()
    log = AccessLog(stream)
    app = App(runtime, observer=Observability(access_log=log))
    async with running(app) as url, httpx2.AsyncClient(base_url=url, trust_env=False) as client:
        yield app, client, log, stream


def refused_headers(trace: RequestTrace, request_id: str) -> list[tuple[bytes, bytes]]:
    """Headers the HTTP server refuses to send (as a CR/LF in a model name once made)."""
    return [(b"x-request-id", request_id.encode()), (b"x-router-target", b"sim:a\r\nb")]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        ("/v1/chat/completions", {"model": "chat", "messages": HI}, "openai"),
        ("/v1/messages", {"model": "chat", "max_tokens": 5, "messages": HI}, "anthropic"),
    ],
)
async def test_headers_the_server_refuses_give_a_json_500_and_a_500_in_the_log(
    monkeypatch: pytest.MonkeyPatch, path: str, body: dict[str, Any], shape: str, stream: bool
) -> None:
    monkeypatch.setattr(_exchange, "trace_headers", refused_headers)
    async with serving() as (_, client, log, lines):
        answer = await client.post(path, json={**body, "stream": stream})
        after = await client.get("/healthz")
    log.flush()
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()
    if shape == "anthropic":
        assert error["type"] == "error"
        assert error["error"]["type"] == "api_error"
    else:
        assert "internal error" in error["error"]["message"]
    assert answer.headers["x-request-id"]
    (line,) = [orjson.loads(text) for text in lines.getvalue().splitlines()]
    assert line["status"] == 500
    assert line["error"] == "LocalProtocolError"
    assert after.status_code == 200  # still serving


async def test_a_bug_outside_the_chat_paths_gives_a_json_500(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(_app, "model_list", broken)
    async with serving() as (_, client, _log, _lines):
        answer = await client.get("/v1/models")
        after = await client.get("/healthz")
    assert answer.status_code == 500
    assert answer.json()["error"]["message"].startswith("internal error")
    assert after.status_code == 200


async def test_a_bug_in_the_engine_gives_a_json_500_and_a_500_in_the_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken(*args: object) -> None:
        raise KeyError("a bug")

    async with serving() as (app, client, log, lines):
        monkeypatch.setattr(app.runtime.engine, "complete", broken)
        answer = await client.post(
            "/v1/messages", json={"model": "chat", "max_tokens": 5, "messages": HI}
        )
    log.flush()
    assert answer.status_code == 500
    assert answer.json()["type"] == "error"
    (line,) = [orjson.loads(text) for text in lines.getvalue().splitlines()]
    assert (line["status"], line["error"]) == (500, "KeyError")


@pytest.mark.parametrize("where", ["headers", "engine"])
async def test_a_bug_answering_embeddings_gives_a_json_500_and_a_500_in_the_log(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    async def broken(*args: object) -> None:
        raise KeyError("a bug")

    async with serving() as (app, client, log, lines):
        if where == "headers":
            monkeypatch.setattr(_exchange, "trace_headers", refused_headers)
        else:
            monkeypatch.setattr(app.runtime.engine, "embed", broken)
        answer = await client.post("/v1/embeddings", json={"model": "embed", "input": "hi"})
    log.flush()
    assert answer.status_code == 500
    assert "internal error" in answer.json()["error"]["message"]
    (line,) = [orjson.loads(text) for text in lines.getvalue().splitlines()]
    assert line["status"] == 500
    assert line["error"] == ("LocalProtocolError" if where == "headers" else "KeyError")
