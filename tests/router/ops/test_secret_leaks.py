"""No secret in any output: distinctive fake keys, then a search of everything we emit.

The upstream keys and the admin key are canaries. The fake upstream echoes the key it
was sent in its 401 bodies (the worst case); one canary is not key-shaped, so only the
exact-secret scrubbing can catch it. Searched: error bodies sent to clients (whole and
streamed), the access log, every log record at debug, ``/metrics``, ``/admin/status``,
``/v1/models``, ``/readyz``, the spans (attributes, events, status, resource) and
``llm-router check``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters import provider_kinds
from router import App, Engine, Runtime
from router.ops._accesslog import AccessLog
from router.ops._cli import main
from router.ops._observability import Observability
from router.ops._tracing import setup_tracing
from router.upstream._providers import build_upstreams
from rules import TelemetryConfig, compile_routes, load_config
from tests.conftest import RouterFactory, openai_client
from tests.router.http.test_app_timing import SCOPE, Client

if TYPE_CHECKING:
    from pathlib import Path

    from tests.fakes.openai_upstream import FakeOpenAI

SECRETS = {
    "LEAK_UPSTREAM_KEY": "sk-LEAKCANARY-1234567890",
    "LEAK_OTHER_KEY": "LEAKCANARY-plain-abcdef123",  # not key-shaped
    "LEAK_ADMIN_KEY": "adm-LEAKCANARY-0987654321",
}
CANARY = "LEAKCANARY"


def config(upstream: str) -> str:
    return f"""
[server]
admin_key = "env:LEAK_ADMIN_KEY"

[defaults]
retries = 1
backoff = {{ initial = "1ms", max = "1ms" }}

[providers.up]
kind = "openai"
base_url = "{upstream}"
api_key = "env:LEAK_UPSTREAM_KEY"

[providers.other]
kind = "openai"
base_url = "{upstream}"
api_key = "env:LEAK_OTHER_KEY"

[routes.auth]
fallback = ["up:fail-401"]

[routes.other]
fallback = ["other:fail-401"]

[routes.both]
fallback = ["up:fail-401", "other:fail-401", "up:fail-500"]

[routes.fine]
fallback = ["other:gpt-4o"]
"""


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, secret in SECRETS.items():
        monkeypatch.setenv(name, secret)


def assert_clean(where: str, text: str) -> None:
    assert text, f"nothing captured from {where}"
    assert CANARY not in text, f"a secret leaked into {where}: {text}"


async def requests(client: openai.AsyncOpenAI) -> list[str]:
    """Every failure mode we can reach; returns what the client saw of each error."""
    seen: list[str] = []
    messages: Any = [{"role": "user", "content": "hi"}]
    for model in ("auth", "other", "both", "up:fail-401", "other:fail-500"):
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=model, messages=messages)
        seen.append(caught.value.response.text)
        seen.append(str(caught.value))
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=model, messages=messages, stream=True)
        seen.append(caught.value.response.text)
    await client.chat.completions.create(model="fine", messages=messages)
    return seen


async def test_no_secret_in_any_output(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    toml = config(fake_openai.url)
    async with start_router(toml) as url, openai_client(url) as client:
        seen = await requests(client)
        async with httpx2.AsyncClient() as http:
            admin = {"authorization": f"Bearer {SECRETS['LEAK_ADMIN_KEY']}"}
            pages = {
                path: (await http.get(f"{url}{path}", headers=admin)).text
                for path in ("/metrics", "/admin/status", "/v1/models", "/readyz")
            }
    # The upstream did get the keys (so the 401 bodies echoed them back).
    sent = {r.headers.get("authorization") for r in fake_openai.received}
    assert f"Bearer {SECRETS['LEAK_OTHER_KEY']}" in sent

    for i, text in enumerate(seen):
        assert_clean(f"client-facing error #{i}", text)
    for path, text in pages.items():
        assert_clean(path, text)
    assert "fail-401" in pages["/metrics"]  # the page is real, only clean
    assert_clean("log records", "\n".join(r.getMessage() for r in caplog.records))
    assert_clean(
        "log records' arguments", "\n".join(repr(r.args) for r in caplog.records if r.args)
    )
    captured = capsys.readouterr()
    assert '"error":"AuthenticationFailed"' in captured.err  # the access log is in there
    assert_clean("stderr (the access log)", captured.err)
    assert CANARY not in captured.out

    # `llm-router check` on the same file.
    checked = tmp_path / "check.toml"
    checked.write_text(toml)
    assert main(["check", str(checked)]) == 0
    captured = capsys.readouterr()
    assert_clean("llm-router check", captured.out + captured.err)


async def test_no_secret_in_spans_or_access_lines(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    import io

    path = tmp_path / "router.toml"
    path.write_text(config(fake_openai.url))
    loaded = load_config(str(path), kinds=provider_kinds())
    exporter = InMemorySpanExporter()
    stream = io.StringIO()
    access_log = AccessLog(stream)
    tracing = setup_tracing(TelemetryConfig(exporter="console"), exporter)
    app = App(
        Runtime(compile_routes(loaded), Engine(build_upstreams(loaded))),
        observer=Observability(access_log=access_log, tracing=tracing),
    )
    bodies = []
    for model in ("auth", "other", "both"):
        for stream_it in (False, True):
            client = Client(
                {
                    "model": model,
                    "stream": stream_it,
                    "messages": [{"role": "user", "content": "x"}],
                }
            )
            await app(SCOPE, client.receive, client.send)
            bodies.append(client.text)
    access_log.flush()
    spans = exporter.get_finished_spans()
    assert len(spans) > 6
    dumped = "\n".join(span.to_json() for span in spans)
    assert "AuthenticationFailed" in dumped
    assert_clean("spans", dumped)
    assert_clean("access lines", stream.getvalue())
    for i, body in enumerate(bodies):
        assert_clean(f"in-memory error body #{i}", body)
