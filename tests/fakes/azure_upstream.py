"""A fake Azure OpenAI resource (PROVIDERS.md §6): deployment-scoped Chat Completions.

``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` with the key
in ``api-key`` (or an Entra token as ``Authorization: Bearer``); a wrong or missing
credential gets Azure's 401, a missing ``api-version`` its 404. The deployment name is
the script (:mod:`tests.fakes._base`, :mod:`tests.fakes.openai_upstream`); answers carry
Azure's ``prompt_filter_results`` / ``content_filter_results``, and a stream starts with
a filter-only chunk (``choices: []``, ``id: ""``), as Azure's do. Besides:

- ``fail-404`` is DeploymentNotFound; ``fail-429`` has ``retry-after`` and
  ``retry-after-ms``; every error says ``x-should-retry: false``;
- ``blocked``: the prompt is refused, 400 ``content_filter`` with an ``innererror``;
- ``unsafe``: the answer ends with ``finish_reason: "content_filter"``.

``POST /openai/deployments/{deployment}/embeddings`` answers OpenAI's embeddings for the
deployment (the body names no model), and ``.../completions`` the legacy text
completions (:mod:`tests.fakes._text_completions`). ``GET /openai/models?api-version=...`` lists
models.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from tests.fakes._base import Answer, Received, Reply, sse
from tests.fakes._text_completions import text_completions
from tests.fakes.openai_upstream import FakeOpenAI

__all__ = ["FakeAzure"]

FILTERS = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": FILTERS}]
DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API "
    "endpoint for your resource."
)


def _error(code: str, message: str, **more: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **more}}


_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "400": (400, _error("BadRequest", "Invalid value for 'temperature'.")),
    "401": (401, _error("401", DENIED)),
    "404": (
        404,
        _error("DeploymentNotFound", "The API deployment for this resource does not exist."),
    ),
    "429": (
        429,
        _error(
            "429",
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
            "version 2024-10-21 have exceeded token rate limit of your current tier. "
            "Please retry after 2 seconds.",
        ),
    ),
    "500": (500, _error("InternalServerError", "The server had an error.")),
    "503": (503, _error("ServiceUnavailable", "The service is temporarily overloaded.")),
    "ctx": (
        400,
        _error(
            "context_length_exceeded",
            "This model's maximum context length is 128000 tokens. However, your "
            "messages resulted in 130000 tokens.",
            param="messages",
        ),
    ),
    "blocked": (
        400,
        _error(
            "content_filter",
            "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy.",
            param="prompt",
            status=400,
            innererror={
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    **FILTERS,
                    "violence": {"filtered": True, "severity": "high"},
                },
            },
        ),
    ),
}


@attrs.define
class FakeAzure(FakeOpenAI):
    api_key: str = "azure-fake-key"
    ad_token: str | None = None

    ID: ClassVar[str] = "chatcmpl-az1"
    #: Prompt and completion tokens of every answer.
    USAGE: ClassVar[tuple[int, int]] = (9, 4)
    CALL_ID: ClassVar[str] = "call_az1"

    def answer(self, got: Received) -> Answer:
        if not self._authorised(got.headers):
            return self.failure("401", got)
        if "api-version" not in got.query:
            return Reply(404, _error("404", "Resource not found"))
        if got.method == "GET" and got.path == "/openai/models":
            data = [{"id": "gpt-4o", "object": "model", "status": "succeeded"}]
            return Reply(200, {"object": "list", "data": data})
        parts = got.path.strip("/").split("/")
        if (
            got.method == "POST"
            and parts[:2] == ["openai", "deployments"]
            and parts[3:] == ["embeddings"]
        ):
            return self.embeddings(got, model=parts[2])
        if (
            got.method == "POST"
            and parts[:2] == ["openai", "deployments"]
            and parts[3:] == ["completions"]
        ):
            return text_completions(self, got, model=parts[2])
        if (
            got.method != "POST"
            or len(parts) != 5
            or parts[:2] != ["openai", "deployments"]
            or parts[3:] != ["chat", "completions"]
        ):
            return Reply(404, _error("404", "Resource not found"))
        deployment = parts[2]
        if deployment == "blocked":
            return self.failure("blocked", got)
        return self.scripted(deployment, got, stream=bool(got.body.get("stream")))

    def _authorised(self, headers: dict[str, str]) -> bool:
        if "api-key" in headers:
            return headers["api-key"] == self.api_key
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        return self.ad_token is not None and bearer == self.ad_token

    def failure(self, code: str, got: Received) -> Reply:
        status, body = _ERRORS[code]
        retry = [(b"retry-after", b"2"), (b"retry-after-ms", b"2000")] if status == 429 else []
        return Reply(status, body, [*retry, (b"x-should-retry", b"false")])

    def invalid(self, message: str) -> Reply:
        return Reply(400, _error("BadRequest", message))

    def continues(self, got: Received) -> bool:
        return False  # OpenAI's models answer a trailing assistant message anew

    def answered(self, model: str) -> str:
        return "gpt-4o-2024-08-06"

    def decorate(self, body: dict[str, Any]) -> dict[str, Any]:
        if body["object"] == "chat.completion":
            body["prompt_filter_results"] = PROMPT_FILTERS
        return {**body, "system_fingerprint": "fp_az"}

    def choice(self, choice: dict[str, Any]) -> dict[str, Any]:
        if "message" in choice or choice["delta"].get("content"):
            choice["content_filter_results"] = FILTERS
        return choice

    def head(self) -> list[bytes]:
        filter_only = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": PROMPT_FILTERS,
        }
        return [sse(filter_only)]
