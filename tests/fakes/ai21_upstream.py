"""A fake AI21 Studio chat API: ``POST /studio/v1/chat/completions`` (Jamba).

OpenAI's Chat Completions shape (:class:`FakeOpenAI`'s answers and script) with AI21's
documented differences, which it enforces: ``Authorization: Bearer <key>``; message
``content`` a string and roles ``system``, ``user``, ``assistant``, ``tool`` only;
``response_format`` ``text`` or ``json_object``; no ``stream_options`` or
``tool_choice`` (422 for any of these, as ``{"detail": ...}``). Errors are
``{"detail": ...}``; a stream's last chunk (with the finish reason) carries ``usage``
and ``[DONE]`` follows. ``documents`` are taken and counted in the answer
(``[N document(s)]``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from tests.fakes._base import Answer, Received, Reply, Stream, sse
from tests.fakes.openai_upstream import FakeOpenAI

__all__ = ["FakeAI21"]

_ERRORS = {
    "400": (400, "Invalid request: temperature must be between 0 and 2"),
    "401": (401, "Forbidden: Bad or missing API token."),
    "404": (404, "Model not found"),
    "429": (429, "Too many requests"),
    "500": (500, "Internal server error"),
    "503": (503, "Service unavailable"),
    "ctx": (422, "Input is too long: prompt exceeds the model's context window of 256000"),
}
_ROLES = {"system", "user", "assistant", "tool"}


@attrs.define
class FakeAI21(FakeOpenAI):
    ID: ClassVar[str] = "chat-ai21-fake1"
    USAGE: ClassVar[tuple[int, int]] = (12, 5)

    def answer(self, got: Received) -> Answer:
        if got.method == "GET":
            return Reply(200, {"object": "list", "data": []})
        if self.key is not None and got.headers.get("authorization") != f"Bearer {self.key}":
            return self.failure("401", got)
        if got.path != "/studio/v1/chat/completions":
            return self.failure("404", got)
        problem = _refused(got.body)
        if problem is not None:
            return Reply(422, {"detail": problem})
        return self.scripted(str(got.body["model"]), got, stream=bool(got.body.get("stream")))

    def failure(self, code: str, got: Received) -> Reply:
        status, message = _ERRORS[code]
        return Reply(status, {"detail": message})

    def invalid(self, message: str) -> Reply:
        return Reply(422, {"detail": message})

    def usage(self) -> dict[str, Any]:
        prompt, completion = self.USAGE
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def answered(self, model: str) -> str:
        return model

    def answer_text(self, model: str, got: Received, default: str) -> str:
        documents = got.body.get("documents") or []
        text = super().answer_text(model, got, default)
        return text + (f" [{len(documents)} document(s)]" if documents else "")

    def stream(self, model: str, got: Received) -> Stream:
        answer = super().stream(model, got)
        finish = {"long": "length"}.get(model, "stop")
        body = {
            "id": self.ID,
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish, "logprobs": None}],
            "usage": self.usage(),
        }
        return attrs.evolve(answer, tail=[sse(body), b"data: [DONE]\n\n"])


def _refused(body: dict[str, Any]) -> str | None:
    """What AI21 refuses in ``body`` (a 422's detail), or None."""
    for name in ("stream_options", "tool_choice"):
        if name in body:
            return f"Unknown parameter: {name}"
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in ("text", "json_object"):
        return "response_format.type must be one of 'text', 'json_object'"
    for message in body.get("messages") or ():
        if message.get("role") not in _ROLES:
            return f"Invalid role: {message.get('role')}"
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            return "messages.content: str type expected"
    return None
