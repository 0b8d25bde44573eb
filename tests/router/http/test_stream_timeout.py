"""A healthy stream outlives the route's ``timeout`` and is bounded by its
``stream_timeout``: the app on trio's MockClock, a simulated provider that streams one
token a second."""

from __future__ import annotations

import orjson
import trio
import trio.testing

from adapters import provider_kinds
from router import App, Engine, Runtime
from router.upstream._providers import build_upstreams
from rules import compile_routes, parse_config
from tests.router.http.test_app_timing import SCOPE, Client

CONFIG = """
[defaults]
timeout = "5s"
stream_timeout = "30s"

[providers.slow]
kind = "simulated"
latency = { median = "1s", p99 = "1s" }
tokens_per_second = 1

[routes.long]
fallback = ["slow:echo"]

[routes.short]
fallback = ["slow:echo"]
stream_timeout = "8s"
"""

WORDS = " ".join(f"w{i}" for i in range(12))


def make_app() -> App:
    config = parse_config(CONFIG, kinds=provider_kinds())
    return App(Runtime(compile_routes(config), Engine(build_upstreams(config))))


def events(client: Client) -> list[str]:
    return [e.removeprefix("data: ") for e in client.text.split("\n\n") if e]


async def test_a_stream_that_keeps_flowing_is_not_cut_at_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = {"model": "long", "stream": True, "messages": [{"role": "user", "content": WORDS}]}
    client = Client(body)
    await make_app()(SCOPE, client.receive, client.send)
    assert trio.current_time() > 10.0  # twice the timeout
    got = events(client)
    assert got[-1] == "[DONE]"
    assert "error" not in client.text
    text = "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in map(orjson.loads, got[:-1])
        if c["choices"]
    )
    assert text == WORDS  # the simulated model echoes


async def test_the_route_stream_timeout_ends_it_charged_to_the_target(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = {"model": "short", "stream": True, "messages": [{"role": "user", "content": WORDS}]}
    client = Client(body)
    app = make_app()
    await app(SCOPE, client.receive, client.send)
    assert trio.current_time() == 8.0
    assert client.status == 200
    last = orjson.loads(events(client)[-1])
    assert "did not end by its deadline" in last["error"]["message"]
    assert app.runtime.engine.registry.get("slow:echo").failures == 1
