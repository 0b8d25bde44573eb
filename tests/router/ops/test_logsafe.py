"""An upstream's error text cannot forge log lines: its control characters are escaped."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import attrs
import httpx2
import pytest

from router.ops._logsafe import OneLine, one_line
from tests.fakes._base import running, sse
from tests.fakes.openai_upstream import FakeOpenAI

if TYPE_CHECKING:
    from tests.conftest import RouterFactory
    from tests.fakes._base import Received, Stream

FORGED = 'upstream trouble\n{"forged": true, "status": 200}\r\n\x1b[2Jcleared\u2028next'


@attrs.define
class ForgingUpstream(FakeOpenAI):
    """Breaks its streams with an error event whose message carries line breaks."""

    def stream(self, model: str, got: Received) -> Stream:
        error = {"message": FORGED, "type": "server_error", "param": None, "code": None}
        return attrs.evolve(super().stream(model, got), error=sse({"error": error}))


async def test_an_upstream_error_message_is_one_log_line(
    start_router: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = ForgingUpstream()
    async with running(upstream) as base:
        toml = f"""
[providers.up]
kind = "openai_compatible"
base_url = "{base}/v1"

[routes.chat]
fallback = ["up:error-mid-stream"]
"""
        with caplog.at_level(logging.INFO, logger="llm_router"):
            async with (
                start_router(toml) as url,
                httpx2.AsyncClient(base_url=url, trust_env=False) as client,
            ):
                body = {
                    "model": "chat",
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                }
                async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                    streamed = await response.aread()
    assert b"upstream trouble" in streamed  # the client's error event (JSON-escaped)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    told = [formatter.format(r) for r in caplog.records if "upstream trouble" in r.getMessage()]
    assert told  # the broken stream is logged (with the upstream's words)...
    for line in told:  # ...each record on exactly one line, its text escaped
        assert line.splitlines() == [line]
        assert '\\n{"forged": true, "status": 200}\\r\\n\\x1b[2Jcleared\\u2028next' in line
    text = "\n".join(formatter.format(r) for r in caplog.records)
    assert not any(line.startswith("{") for line in text.splitlines())


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("a\nb",), "x a\\nb"),
        (({"k": "a\rb"},), None),  # a mapping: formatted by key
        ((ValueError("bad\n{}"),), "x bad\\n{}"),
        ((3,), "x 3"),
        (("tab\tstays",), "x tab\tstays"),
    ],
)
def test_the_filter_escapes_arguments(args: tuple[Any, ...], shown: str | None) -> None:
    template = "x %(k)s" if isinstance(args[0], dict) else "x %s"
    record = logging.LogRecord("llm_router", logging.INFO, __file__, 1, template, args, None)
    assert OneLine().filter(record)
    assert record.getMessage() == (shown or "x a\\rb")


def test_one_line_leaves_clean_text_alone() -> None:
    text = "stream from up:gpt broke: The server had an error."
    assert one_line(text) is text
    assert one_line("\x00\x7f\x85") == "\\x00\\x7f\\x85"
