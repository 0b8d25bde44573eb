"""The access log: one JSON object per line, buffered until a flush."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import orjson
import trio

from adapters import provider_kinds
from router import App, Engine, Runtime
from router.ops._accesslog import AccessLog
from router.ops._observability import Observability
from router.routing._request import RequestTrace
from router.upstream._providers import build_upstreams
from rules import compile_routes, parse_config
from tests.router.http.test_app_timing import CONFIG, SCOPE, Client

if TYPE_CHECKING:
    import trio.testing

FIELDS = [
    "ts",
    "request_id",
    "method",
    "path",
    "status",
    "route",
    "target",
    "attempts",
    "hedges",
    "retries",
    "resumes",
    "duration_ms",
    "ttft_ms",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "key",
    "cache",
    "error",
]


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_a_json_object_with_every_field() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    trace = RequestTrace("chat", attempts=2, status=200, target="up:gpt-4o", retries=1)
    trace.ttft, trace.tokens_in, trace.tokens_out = 0.25, 7, 5
    trace.cost_usd, trace.client, trace.cache = 0.0000123456789, "team-a", "miss"
    trace.resumes = [("down:gpt-4o", "failed"), ("up:gpt-4o", "resumed")]
    log.record(trace, "POST", "/v1/chat/completions", "abc", 812.345)
    assert stream.getvalue() == ""  # buffered
    log.flush()
    [line] = lines(stream)
    assert list(line) == FIELDS
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(line["ts"]))
    assert line | {"ts": None} == {
        "ts": None,
        "request_id": "abc",
        "method": "POST",
        "path": "/v1/chat/completions",
        "status": 200,
        "route": "chat",
        "target": "up:gpt-4o",
        "attempts": 2,
        "hedges": 0,
        "retries": 1,
        "resumes": 1,
        "duration_ms": 812.3,
        "ttft_ms": 250.0,
        "tokens_in": 7,
        "tokens_out": 5,
        "cost_usd": 0.00001235,
        "key": "team-a",
        "cache": "miss",
        "error": None,
    }


def test_a_request_that_never_got_an_answer_is_499() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.record(RequestTrace(""), "POST", "/v1/messages", "x", 1.0)
    log.flush()
    [line] = lines(stream)
    assert line["status"] == 499
    assert line["route"] is None


def test_a_full_buffer_is_written_at_once() -> None:
    stream = io.StringIO()
    log = AccessLog(stream, max_buffer=100)
    log.record(RequestTrace("chat", status=200), "POST", "/v1/chat/completions", "a", 1.0)
    assert len(lines(stream)) == 1


async def test_lines_from_the_app(autojump_clock: trio.testing.MockClock) -> None:
    stream = io.StringIO()
    config = parse_config(CONFIG, kinds=provider_kinds())
    runtime = Runtime(compile_routes(config), Engine(build_upstreams(config)))
    access_log = AccessLog(stream)
    app = App(runtime, observer=Observability(access_log=access_log))
    ok = Client({"model": "chain", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    await app(SCOPE, ok.receive, ok.send)
    late = Client({"model": "slow", "messages": [{"role": "user", "content": "x"}]})
    await app(SCOPE, late.receive, late.send)
    missing = Client({"model": "nope", "messages": [{"role": "user", "content": "x"}]})
    await app(SCOPE, missing.receive, missing.send)
    access_log.flush()
    streamed, timed_out, unknown = lines(stream)
    assert streamed["status"] == 200
    assert streamed["route"] == "chain"
    assert streamed["target"] == "fast:echo"
    assert streamed["attempts"] == 2
    assert streamed["ttft_ms"] == 4000.0  # 3 s first-token timeout on slow, 1 s on fast
    assert streamed["error"] is None
    assert timed_out["status"] == 504
    assert timed_out["error"] == "Timeout"
    assert timed_out["duration_ms"] == 10000.0
    assert unknown["status"] == 404
    assert unknown["error"] == "NotFound"
    assert unknown["route"] is None
    assert len({line["request_id"] for line in (streamed, timed_out, unknown)}) == 3


BODIES = """
[server]
log_bodies = true

[providers.fast]
kind = "simulated"
latency = { median = "10ms", p99 = "10ms" }

[routes.chat]
fallback = ["fast:echo"]
"""


async def test_bodies_are_logged_only_through_the_redactor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    said = "mail jane@example.org, card 4111 1111 1111 1111, key sk-abcdefghijklmnopqrstuvwxyz12"
    logged: list[dict[str, object]] = []
    for text in (BODIES, BODIES.replace("log_bodies = true", "")):
        stream = io.StringIO()
        config = parse_config(text, kinds=provider_kinds())
        runtime = Runtime(compile_routes(config), Engine(build_upstreams(config)))
        access_log = AccessLog(stream)
        app = App(runtime, observer=Observability(access_log=access_log))
        for streamed in (False, True):
            ask = {
                "model": "chat",
                "stream": streamed,
                "messages": [{"role": "user", "content": said}],
            }
            client = Client(ask)
            await app(SCOPE, client.receive, client.send)
            assert client.status == 200
        access_log.flush()
        assert "jane@example.org" not in stream.getvalue()
        assert "4111" not in stream.getvalue()
        logged += lines(stream)
    whole, streamed_line, *unlogged = logged
    clean = "mail [EMAIL], card [CARD], key [API_KEY]"
    assert whole["prompt"] == streamed_line["prompt"] == f"user: {clean}"
    assert clean in str(whole["answer"])
    assert clean in str(streamed_line["answer"])
    assert [list(line) for line in unlogged] == [FIELDS, FIELDS]  # off by default
