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
- the shared stream cuts (:mod:`tests.fakes._base`): ``error-mid-stream`` is an
  ``{"error": ...}`` line (status 200), ``truncated`` ends without the ``done`` line.

(Ollama truncates an over-long prompt rather than failing, so there is no ``fail-ctx``,
and it has no content filter.) ``POST /api/embed`` (``model`` and ``input``, a text or a
list; ``dimensions``) answers ``embeddings`` with ``prompt_eval_count``
(:mod:`tests.fakes._vectors`). ``GET /api/tags`` lists models. Requests are recorded.
"""

from __future__ import annotations

from typing import Any

import attrs

from tests.fakes._base import Answer, FakeServer, Received, Reply, Stream, echo, ndjson, words
from tests.fakes._vectors import fake_tokens, fake_vector, inputs_of

__all__ = ["FakeOllama"]

CREATED_AT = "2026-11-26T05:00:00.123456789Z"
_ERRORS = {
    "400": (
        400,
        "json: cannot unmarshal string into Go struct field Options.options.temperature "
        "of type float32",
    ),
    "404": (404, "model 'fail-404' not found, try pulling it first"),
    "429": (429, "too many concurrent requests"),
    "500": (500, "llama runner process has terminated: signal: killed"),
    "502": (502, "cloud model unreachable"),
    "503": (503, "server busy, please try again.  maximum pending requests exceeded"),
}


def _answer(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            return echo([message["content"]], len(message.get("images") or ()))
    return "hello"


@attrs.define
class FakeOllama(FakeServer):
    api_key: str | None = None

    def answer(self, got: Received) -> Answer:
        bearer = got.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key is not None and bearer != self.api_key:
            return Reply(401, {"error": "unauthorized"})
        if got.method == "GET" and got.path == "/api/tags":
            model = {"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189}
            return Reply(200, {"models": [model]})
        if got.method == "POST" and got.path == "/api/embed":
            return self.embed(got)
        if got.method != "POST" or got.path != "/api/chat":
            return Reply(404, {"error": "404 page not found"})
        return self.scripted(got.body["model"], got, stream=got.body.get("stream", True))

    def embed(self, got: Received) -> Answer:
        model, raw = got.body.get("model"), got.body.get("input")
        if not isinstance(model, str) or raw is None:
            return self.invalid("invalid input type")
        scripted = self.embedding_script(model, got)
        if scripted is not None:
            return scripted
        texts = inputs_of(raw)
        size = got.body.get("dimensions")
        answer = {
            "model": model,
            "embeddings": [fake_vector(t, size) for t in texts],
            "total_duration": 14143917,
            "load_duration": 1019500,
            "prompt_eval_count": sum(fake_tokens(t) for t in texts),
        }
        return Reply(200, answer)

    def failure(self, code: str, got: Received) -> Reply:
        status, error = _ERRORS[code]
        return Reply(status, {"error": error})

    def invalid(self, message: str) -> Reply:
        return Reply(400, {"error": message})

    def prefill(self, got: Received) -> str | None:
        messages = got.body.get("messages") or []
        if not messages or messages[-1]["role"] != "assistant":
            return None
        return str(messages[-1].get("content") or "")

    def reply(self, model: str, got: Received) -> Reply:
        lines = self._lines(model, got)
        content = "".join(line["message"]["content"] for line in lines)
        calls = [c for line in lines for c in line["message"].get("tool_calls") or ()]
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        return Reply(200, {**lines[-1], "message": message})

    def stream(self, model: str, got: Received) -> Stream:
        *pieces, done = (ndjson(line) for line in self._lines(model, got))
        error = ndjson({"error": "an error was encountered while running the model"})
        garbage = b'{"message": {"role": "assistant", "content": "unfin\n'
        return Stream(
            [], pieces, [done], error, content_type=b"application/x-ndjson", garbage=garbage
        )

    def _lines(self, model: str, got: Received) -> list[dict[str, Any]]:
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
            text = self.answer_text(model, got, _answer(got.body["messages"]))
            lines.extend(line(w) for w in words(text))
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
