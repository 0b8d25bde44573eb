"""Trace spans: a SERVER span per request, a CLIENT child per attempt, GenAI attributes.

The app runs in memory on MockClock with simulated upstreams, and an in-memory exporter
collects the spans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
import trio.testing
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from adapters import provider_kinds
from router import App, Engine, Runtime
from router.http._observer import RequestFacts
from router.ops._observability import Observability
from router.ops._tracing import setup_tracing
from router.routing._request import RequestTrace
from router.upstream._providers import build_upstreams
from rules import TelemetryConfig, compile_routes, parse_config
from tests.router.http.test_app_timing import SCOPE, Client

if TYPE_CHECKING:
    import pytest
    from opentelemetry.sdk.trace import ReadableSpan

CONFIG = """
[defaults]
timeout = "10s"
first_token_timeout = "3s"
retries = 0

[providers.slow]
kind = "simulated"
latency = { median = "100s", p99 = "100s" }

[providers.fast]
kind = "simulated"
latency = { median = "1s", p99 = "1s" }

[providers.remote]
kind = "openai"
base_url = "http://127.0.0.1:9/v1?token=hidden"

[routes.chain]
fallback = ["slow:echo", "fast:echo"]

[routes.direct]
fallback = ["fast:echo"]

[routes.down]
fallback = ["remote:gpt-4o"]
"""


def make_app(exporter: InMemorySpanExporter) -> App:
    config = parse_config(CONFIG, kinds=provider_kinds())
    tracing = setup_tracing(TelemetryConfig(exporter="otlp"), exporter)
    return App(
        Runtime(compile_routes(config), Engine(build_upstreams(config))),
        observer=Observability(tracing=tracing),
    )


def by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == kind]


def chat(model: str, **extra: Any) -> Client:
    return Client({"model": model, "messages": [{"role": "user", "content": "hi"}], **extra})


async def test_request_and_attempt_spans(autojump_clock: trio.testing.MockClock) -> None:
    exporter = InMemorySpanExporter()
    app = make_app(exporter)
    client = chat("chain", stream=True)
    await app(SCOPE, client.receive, client.send)
    assert client.status == 200
    spans = exporter.get_finished_spans()
    [server] = by_kind(spans, SpanKind.SERVER)
    slow, fast = sorted(by_kind(spans, SpanKind.CLIENT), key=lambda s: s.start_time or 0)
    assert server.name == "chat chain"
    assert slow.name == fast.name == "chat echo"
    for child in (slow, fast):
        assert child.parent is not None
        assert child.parent.span_id == server.context.span_id
        assert child.context.trace_id == server.context.trace_id
    attributes = server.attributes or {}
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "chain"
    assert attributes["gen_ai.system"] == "simulated"
    assert attributes["llm_router.route"] == "chain"
    assert attributes["llm_router.attempts"] == 2
    assert attributes["llm_router.hedged"] is False
    assert attributes["http.response.status_code"] == 200
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert server.status.status_code == StatusCode.UNSET
    # The slow target timed out at its first-token deadline: an error span.
    assert (slow.attributes or {})["error.type"] == "Timeout"
    assert slow.status.status_code == StatusCode.ERROR
    assert (slow.attributes or {})["llm_router.result"] == "timeout"
    fast_attributes = fast.attributes or {}
    assert fast_attributes["gen_ai.request.model"] == "echo"
    assert fast_attributes["llm_router.target"] == "fast:echo"
    assert "error.type" not in fast_attributes
    # Times come from trio's clock: 3 s of slow, then fast to the end of its stream.
    assert slow.end_time is not None
    assert slow.start_time is not None
    assert slow.end_time - slow.start_time == 3_000_000_000
    assert fast.end_time == server.end_time


async def test_usage_and_response_model_on_a_whole_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    exporter = InMemorySpanExporter()
    await make_app(exporter)(SCOPE, (client := chat("direct")).receive, client.send)
    assert client.status == 200
    [server] = by_kind(exporter.get_finished_spans(), SpanKind.SERVER)
    [attempt] = by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    for span in (server, attempt):
        attributes = span.attributes or {}
        inputs = attributes["gen_ai.usage.input_tokens"]
        outputs = attributes["gen_ai.usage.output_tokens"]
        assert isinstance(inputs, int)
        assert inputs > 0
        assert isinstance(outputs, int)
        assert outputs > 0
        assert attributes["gen_ai.response.model"]


async def test_failed_request_has_an_error_span_and_only_the_host() -> None:
    exporter = InMemorySpanExporter()
    client = chat("down")
    await make_app(exporter)(SCOPE, client.receive, client.send)
    assert client.status == 502
    [server] = by_kind(exporter.get_finished_spans(), SpanKind.SERVER)
    [attempt] = by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    assert server.status.status_code == StatusCode.ERROR
    assert (server.attributes or {})["error.type"] == "NetworkError"
    assert (server.attributes or {})["http.response.status_code"] == 502
    attributes = attempt.attributes or {}
    assert attributes["gen_ai.system"] == "openai"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == 9
    assert attributes["error.type"] == "NetworkError"
    assert not any("token" in str(v) or "/v1" in str(v) for v in attributes.values())


async def test_spans_end_when_the_client_leaves(autojump_clock: trio.testing.MockClock) -> None:
    exporter = InMemorySpanExporter()
    app = make_app(exporter)
    client = chat("chain")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, SCOPE, client.receive, client.send)
        await trio.sleep(2.0)
        client.hang_up.set()
    [server] = by_kind(exporter.get_finished_spans(), SpanKind.SERVER)
    [attempt] = by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    assert (server.attributes or {})["http.response.status_code"] == 499
    assert (server.attributes or {})["error.type"] == "cancelled"
    assert (attempt.attributes or {})["llm_router.result"] == "cancelled"
    assert attempt.end_time is not None
    assert attempt.start_time is not None
    assert attempt.end_time - attempt.start_time == 2_000_000_000


async def test_off_means_no_sdk_objects() -> None:
    tracing = setup_tracing(TelemetryConfig())
    assert not tracing.enabled
    assert tracing.provider is None
    tracing.shutdown()  # harmless
    await tracing.aclose()


async def test_sampling_ratio_zero_records_nothing() -> None:
    exporter = InMemorySpanExporter()
    config = parse_config(CONFIG, kinds=provider_kinds())
    tracing = setup_tracing(TelemetryConfig(exporter="console", sample_ratio=0.0), exporter)
    app = App(
        Runtime(compile_routes(config), Engine(build_upstreams(config))),
        observer=Observability(tracing=tracing),
    )
    client = chat("down")
    await app(SCOPE, client.receive, client.send)
    assert exporter.get_finished_spans() == ()


def test_disabled_tracing_is_not_called_on_the_request_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tracing that exports nothing costs a request one attribute check: the observer
    never calls into it (its cost is measured by the benchmark, not here)."""
    disabled = setup_tracing(TelemetryConfig())
    assert not disabled.enabled

    def record(*args: object) -> None:
        raise AssertionError("tracing.record was called while tracing is off")

    monkeypatch.setattr(disabled, "record", record)
    observer = Observability(tracing=disabled)
    trace = RequestTrace("chat", status=200, outcome="ok")
    observer.ended(trace, RequestFacts("POST", "/v1/chat/completions", "id", 0, 0.0, 1.0))
    assert observer.metrics.requests.labels("-", "-", "ok")._value.get() == 1.0
