"""A fake Ollama server (native API): ``POST /api/chat`` with NDJSON streaming.

When built with an ``api_key`` it plays ollama.com and wants ``Authorization: Bearer``
(401 ``{"error": "unauthorized"}`` otherwise); without one, a local server, no auth.
Behaviour is scripted by the model name:

- any model: an answer echoing the last user text (and how many ``images`` it got);
  streamed as one line per word, then a ``done: true`` line with ``done_reason`` and
  the nanosecond metrics; ``stream`` defaults to true, as Ollama's does;
- ``tool-caller``: a whole ``get_weather`` call with object arguments and no id (as
  older servers send), ending with ``done_reason: "stop"``;
- ``long``: ends with ``done_reason: "length"``;
- ``fail-400``, ``fail-404`` ("model not found"), ``fail-429``, ``fail-500``,
  ``fail-502``, ``fail-503``: that status with ``{"error": "..."}``;
- ``error-mid-stream``: a content line, then an ``{"error": ...}`` line (status 200);
- ``break-mid-stream``: two content lines, then the connection drops;
- ``no-done``: the body ends cleanly without the ``done`` line.

(Ollama truncates an over-long prompt rather than failing, so there is no ``fail-ctx``,
and it has no content filter.) ``GET /api/tags`` lists models. Requests are recorded.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from tests.fakes.azure_upstream import Received, lifespan, read_body, record, send_json
from tests.fakes.openai_upstream import UpstreamBroke

__all__ = ["FakeOllama"]

CREATED_AT = "2026-11-26T05:00:00.123456789Z"
_ERRORS = {
    "fail-400": (400, "invalid options: num_predict"),
    "fail-404": (404, "model 'fail-404' not found, try pulling it first"),
    "fail-429": (429, "too many concurrent requests"),
    "fail-500": (500, "llama runner process has terminated: signal: killed"),
    "fail-502": (502, "cloud model unreachable"),
    "fail-503": (503, "server busy, please try again.  maximum pending requests exceeded"),
}


def _answer(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            images = len(message.get("images") or ())
            suffix = f" [{images} image(s)]" if images else ""
            return f"echo: {message['content']}{suffix}"
    return "hello"


@attrs.define
class FakeOllama:
    api_key: str | None = None
    received: list[Received] = attrs.field(factory=list)
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        got = record(scope, await read_body(receive))
        self.received.append(got)
        bearer = got.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key is not None and bearer != self.api_key:
            await send_json(send, 401, {"error": "unauthorized"})
            return
        if got.method == "GET" and got.path == "/api/tags":
            model = {"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189}
            await send_json(send, 200, {"models": [model]})
            return
        if got.method != "POST" or got.path != "/api/chat":
            await send_json(send, 404, {"error": "404 page not found"})
            return
        model = got.body["model"]
        if model in _ERRORS:
            status, error = _ERRORS[model]
            await send_json(send, status, {"error": error})
            return
        lines = self._lines(model, got.body)
        if not got.body.get("stream", True):
            final = lines[-1]
            content = "".join(line["message"]["content"] for line in lines)
            calls = [c for line in lines for c in line["message"].get("tool_calls") or ()]
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if calls:
                message["tool_calls"] = calls
            await send_json(send, 200, {**final, "message": message})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/x-ndjson")],
            }
        )
        for i, line in enumerate(lines):
            if model == "no-done" and line["done"]:
                break
            if model == "break-mid-stream" and i == 2:
                raise UpstreamBroke("dropping the connection mid-stream")
            if model == "error-mid-stream" and i == 1:
                line = {"error": "an error was encountered while running the model"}
            data = orjson.dumps(line) + b"\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})
            if model == "error-mid-stream" and i == 1:
                break
        await send({"type": "http.response.body", "body": b""})

    def _lines(self, model: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        def line(content: str, **more: Any) -> dict[str, Any]:
            message = {"role": "assistant", "content": content}
            return {
                "model": f"{model}:latest",
                "created_at": CREATED_AT,
                "message": message | more.pop("message", {}),
                "done": False,
                **more,
            }

        lines: list[dict[str, Any]] = []
        if model == "tool-caller":
            call = {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
            lines.append(line("", message={"tool_calls": [call]}))
        else:
            words = _answer(payload["messages"]).split(" ")
            lines.extend(line(w if i == 0 else " " + w) for i, w in enumerate(words))
        lines.append(
            line(
                "",
                done=True,
                done_reason="length" if model == "long" else "stop",
                total_duration=4_935_886_791,
                load_duration=534_986_708,
                prompt_eval_count=26,
                prompt_eval_duration=107_345_000,
                eval_count=len(lines),
                eval_duration=4_289_432_000,
            )
        )
        return lines
