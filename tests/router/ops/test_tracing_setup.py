"""``[telemetry]`` exporters as the daemon builds them: spans on stdout for ``console``
(flushed at close), a clear error for ``otlp`` without its package, and the
``server.address`` of an upstream whose URL has no usable port."""

from __future__ import annotations

import sys
import types

import orjson
import pytest

from router.ops._tracing import Tracing, setup_tracing
from rules import ConfigError, TelemetryConfig


async def test_console_spans_reach_stdout_when_tracing_closes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tracing = setup_tracing(TelemetryConfig(exporter="console", service_name="edge-7"))
    assert tracing.enabled
    assert tracing.tracer is not None
    tracing.tracer.start_span("chat probe").end()
    await tracing.aclose()  # the batch is flushed, off the event loop
    span = orjson.loads(capsys.readouterr().out)
    assert span["name"] == "chat probe"
    assert span["resource"]["attributes"]["service.name"] == "edge-7"


async def test_otlp_exports_to_the_endpoint_or_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = TelemetryConfig(exporter="otlp", endpoint="http://127.0.0.1:9/v1/traces")
    tracing = setup_tracing(config)  # nothing is sent before a span is
    assert tracing.enabled
    await tracing.aclose()
    # Without the extra installed, the import fails: the error names the extra.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(
        ConfigError, match=r"^telemetry.exporter: .*pip install 'llm-router\[otlp\]'"
    ):
        setup_tracing(config)


async def test_tracing_off_records_and_closes_nothing() -> None:
    tracing = Tracing()
    assert not tracing.enabled
    tracing.shutdown()
    await tracing.aclose()


def test_an_upstream_port_out_of_range_leaves_only_the_host() -> None:
    tracing = Tracing()
    upstream = types.SimpleNamespace(adapter=types.SimpleNamespace(url="http://up.test:70000/v1"))
    assert tracing._host(upstream) == ("up.test", None)
    pathless = types.SimpleNamespace(
        adapter=types.SimpleNamespace(base_url="https://api.test:8443")
    )
    assert tracing._host(pathless) == ("api.test", 8443)
    assert tracing._host(types.SimpleNamespace()) == (None, None)
