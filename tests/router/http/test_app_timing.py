"""The ASGI app's deadlines and disconnects, driven in memory on trio's MockClock."""

from __future__ import annotations

from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
import trio
import trio.testing

from adapters import Capabilities, ChatChunk, ChunkChoice, Delta, provider_kinds
from router import App, Engine, Runtime
from router.upstream._providers import build_upstreams
from rules import compile_routes, parse_config

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    import pytest

    from adapters import EmbeddingRequest, EmbeddingResponse, GatewayRequest, GatewayResponse

CONFIG = """
[defaults]
timeout = "10s"
first_token_timeout = "3s"
stream_timeout = "10s"

[providers.slow]
kind = "simulated"
latency = { median = "100s", p99 = "100s" }

[providers.fast]
kind = "simulated"
latency = { median = "1s", p99 = "1s" }
tokens_per_second = 1

[routes.slow]
fallback = ["slow:echo"]

[routes.chain]
fallback = ["slow:echo", "fast:echo"]
"""


def make_app() -> App:
    config = parse_config(CONFIG, kinds=provider_kinds())
    return App(Runtime(compile_routes(config), Engine(build_upstreams(config))))


class Client:
    """One ASGI request: a body to give, and every message the app sends back."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = orjson.dumps(body)
        self.sent: list[dict[str, Any]] = []
        self.hang_up = trio.Event()

    async def receive(self) -> dict[str, Any]:
        if self.body:
            body, self.body = self.body, b""
            return {"type": "http.request", "body": body, "more_body": False}
        await self.hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        status = next(m["status"] for m in self.sent if m["type"] == "http.response.start")
        assert isinstance(status, int)
        return status

    @property
    def text(self) -> str:
        return b"".join(m.get("body", b"") for m in self.sent[1:]).decode()


SCOPE = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}


async def test_request_deadline_is_a_504(autojump_clock: trio.testing.MockClock) -> None:
    client = Client({"model": "slow", "messages": [{"role": "user", "content": "x"}]})
    await make_app()(SCOPE, client.receive, client.send)
    assert trio.current_time() == 10.0
    assert client.status == 504
    assert "deadline" in orjson.loads(client.text)["error"]["message"]


async def test_stream_deadline_after_commit_ends_with_an_error_event(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client = Client(
        {
            "model": "fast:storyteller",
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    await make_app()(SCOPE, client.receive, client.send)
    assert client.status == 200  # committed at the first token, at t=1
    assert trio.current_time() == 10.0  # one token a second until the deadline
    events = [e for e in client.text.split("\n\n") if e]
    assert events[-1].startswith('data: {"error"')
    assert "[DONE]" not in client.text
    assert len(events) == 1 + 9 + 1  # role+first token, 9 more tokens, the error


async def test_silent_first_target_fails_over_in_a_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client = Client(
        {"model": "chain", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    await make_app()(SCOPE, client.receive, client.send)
    headers = dict(client.sent[0]["headers"])
    assert headers[b"x-router-target"] == b"fast:echo"
    assert headers[b"x-router-attempts"] == b"2"
    # 3 s first_token_timeout on slow, 1 s to fast's only token, 1 s to its finish chunk
    assert trio.current_time() == 3.0 + 1.0 + 1.0
    assert client.text.endswith("data: [DONE]\n\n")


async def test_disconnect_cancels_the_attempt_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client = Client({"model": "slow", "messages": [{"role": "user", "content": "x"}]})
    app = make_app()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, SCOPE, client.receive, client.send)
        await trio.sleep(2.0)
        client.hang_up.set()
    assert trio.current_time() == 2.0  # the 100 s attempt did not run on
    assert client.sent == []  # nothing answered to a client that left


class Buggy:
    """An upstream with a bug (not a GatewayError) before or during its stream."""

    name = "buggy"
    kind = "buggy"

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        raise KeyError("a bug")

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        raise KeyError("a bug")

    @asynccontextmanager
    async def stream(
        self, req: GatewayRequest, model: str
    ) -> AsyncIterator[AsyncIterator[list[ChatChunk]]]:
        async def chunks() -> AsyncGenerator[list[ChatChunk]]:
            yield [ChatChunk("x", model, 0, (ChunkChoice(0, Delta(content="partial")),))]
            raise RuntimeError("a bug mid-stream")

        async with aclosing(chunks()) as iterator:
            yield iterator

    async def probe(self) -> None:
        await trio.lowlevel.checkpoint()

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def buggy_app() -> App:
    config = parse_config(
        '[providers.buggy]\nkind = "simulated"\n[routes.r]\nfallback = ["buggy:m"]\n',
        kinds=provider_kinds(),
    )
    return App(Runtime(compile_routes(config), Engine({"buggy": Buggy()})))


async def test_a_bug_is_a_well_formed_500(caplog: pytest.LogCaptureFixture) -> None:
    client = Client({"model": "r", "messages": [{"role": "user", "content": "x"}]})
    await buggy_app()(SCOPE, client.receive, client.send)
    assert client.status == 500
    assert "internal error" in orjson.loads(client.text)["error"]["message"]
    assert "KeyError" in caplog.text  # the traceback is in the log, not in the answer
    assert "a bug" not in client.text


async def test_a_bug_mid_stream_ends_with_an_error_event() -> None:
    client = Client({"model": "r", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    await buggy_app()(SCOPE, client.receive, client.send)
    assert client.status == 200
    assert '"partial"' in client.text
    assert client.text.rstrip().splitlines()[-1].startswith('data: {"error"')
    assert "[DONE]" not in client.text
