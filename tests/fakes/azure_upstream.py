"""A fake Azure OpenAI resource: deployment-scoped Chat Completions, served by hypercorn.

``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` with the key
in ``api-key`` (or an Entra token as ``Authorization: Bearer``); a wrong or missing
credential gets Azure's 401, a missing ``api-version`` its 404. Behaviour is scripted
by the deployment name:

- any deployment: an answer echoing the last user text (with the number of images it
  got), with Azure's ``prompt_filter_results`` / ``content_filter_results``; streamed,
  it starts with a filter-only chunk (``choices: []``, ``id: ""``), as Azure's do;
- ``tool-caller``: a ``get_weather`` call, arguments streamed in pieces;
- ``fail-400``, ``fail-401``, ``fail-404`` (DeploymentNotFound), ``fail-429`` (with
  ``retry-after`` and ``retry-after-ms``), ``fail-500``, ``fail-503`` (overloaded),
  ``fail-ctx`` (context_length_exceeded);
- ``filtered``: the prompt is refused, 400 ``content_filter`` with an ``innererror``;
- ``filtered-output``: the answer ends with ``finish_reason: "content_filter"``;
- ``break-mid-stream``: two content chunks, then the connection drops.

``GET /openai/models?api-version=...`` lists models. Every request is recorded.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import attrs
import orjson

from tests.fakes.openai_upstream import UpstreamBroke

__all__ = ["FakeAzure", "Received", "read_body", "send_json"]

FILTERS = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": FILTERS}]
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


@attrs.define
class Received:
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]


async def read_body(receive: Any) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return bytes(body)


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "lifespan.shutdown.complete"})
            return


async def send_json(
    send: Any, status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", b"application/json"), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


def record(scope: dict[str, Any], body: bytes) -> Received:
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    payload = orjson.loads(body) if body else {}
    return Received(scope["method"], scope["path"], headers, query, payload)


def last_user(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, list):
                texts = [p["text"] for p in content if p["type"] == "text"]
                images = sum(1 for p in content if p["type"] == "image_url")
                return " ".join(texts) + (f" [{images} image(s)]" if images else "")
            return f"echo: {content}"
    return "hello"


def _error(code: str, message: str, **more: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **more}}


_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "fail-400": (400, _error("BadRequest", "Invalid value for 'temperature'.")),
    "fail-401": (
        401,
        _error("401", "Access denied due to invalid subscription key or wrong API endpoint."),
    ),
    "fail-404": (
        404,
        _error("DeploymentNotFound", "The API deployment for this resource does not exist."),
    ),
    "fail-429": (
        429,
        _error(
            "429",
            "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
            "version 2024-10-21 have exceeded token rate limit of your current tier. "
            "Please retry after 2 seconds.",
        ),
    ),
    "fail-500": (500, _error("InternalServerError", "The server had an error.")),
    "fail-503": (503, _error("ServiceUnavailable", "The service is temporarily overloaded.")),
    "fail-ctx": (
        400,
        _error(
            "context_length_exceeded",
            "This model's maximum context length is 128000 tokens. However, your "
            "messages resulted in 130000 tokens.",
            param="messages",
        ),
    ),
    "filtered": (
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
class FakeAzure:
    api_key: str = "azure-fake-key"
    ad_token: str | None = None
    received: list[Received] = attrs.field(factory=list)
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        got = record(scope, await read_body(receive))
        self.received.append(got)
        if not self._authorised(got.headers):
            body = _error(
                "401",
                "Access denied due to invalid subscription key or wrong API endpoint. "
                "Make sure to provide a valid key for an active subscription and use a "
                "correct regional API endpoint for your resource.",
            )
            await send_json(send, 401, body)
            return
        if "api-version" not in got.query:
            await send_json(send, 404, _error("404", "Resource not found"))
            return
        parts = got.path.strip("/").split("/")
        if got.method == "GET" and got.path == "/openai/models":
            data = [{"id": "gpt-4o", "object": "model", "status": "succeeded"}]
            await send_json(send, 200, {"object": "list", "data": data})
            return
        if (
            got.method != "POST"
            or len(parts) != 5
            or parts[:2] != ["openai", "deployments"]
            or parts[3:] != ["chat", "completions"]
        ):
            await send_json(send, 404, _error("404", "Resource not found"))
            return
        deployment = parts[2]
        if deployment in _ERRORS:
            status, body = _ERRORS[deployment]
            extra = [(b"retry-after", b"2"), (b"retry-after-ms", b"2000")] if status == 429 else []
            await send_json(send, status, body, [*extra, (b"x-should-retry", b"false")])
        elif got.body.get("stream"):
            await self._stream(send, deployment, got.body)
        else:
            await send_json(send, 200, self._completion(deployment, got.body))

    def _authorised(self, headers: dict[str, str]) -> bool:
        if "api-key" in headers:
            return headers["api-key"] == self.api_key
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        return self.ad_token is not None and bearer == self.ad_token

    def _completion(self, deployment: str, payload: dict[str, Any]) -> dict[str, Any]:
        finish = "stop"
        message: dict[str, Any] = {"role": "assistant", "content": last_user(payload["messages"])}
        if deployment == "tool-caller":
            call = {
                "id": "call_az1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        elif deployment == "filtered-output":
            message = {"role": "assistant", "content": None}
            finish = "content_filter"
        return {
            "id": "chatcmpl-az1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-4o-2024-08-06",
            "prompt_filter_results": PROMPT_FILTERS,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish,
                    "logprobs": None,
                    "content_filter_results": FILTERS,
                }
            ],
            "usage": USAGE,
            "system_fingerprint": "fp_az",
        }

    async def _stream(self, send: Any, deployment: str, payload: dict[str, Any]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )

        async def emit(obj: Any) -> None:
            data = b"data: " + orjson.dumps(obj) + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            if delta.get("content"):
                choice["content_filter_results"] = FILTERS
            return {
                "id": "chatcmpl-az2",
                "object": "chat.completion.chunk",
                "created": 1700000001,
                "model": "gpt-4o-2024-08-06",
                "system_fingerprint": "fp_az",
                "choices": [choice],
            }

        filter_only = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": PROMPT_FILTERS,
        }
        await emit(filter_only)
        await emit(chunk({"role": "assistant", "content": ""}))
        if deployment == "tool-caller":
            start = {
                "index": 0,
                "id": "call_az1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
            await emit(chunk({"tool_calls": [start]}))
            for piece in ('{"city"', ':"Par', 'is"}'):
                await emit(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
            finish = "tool_calls"
        elif deployment == "filtered-output":
            finish = "content_filter"
        else:
            words = last_user(payload["messages"]).split(" ")
            for i, word in enumerate(words):
                await emit(chunk({"content": word if i == 0 else " " + word}))
                if deployment == "break-mid-stream" and i == 1:
                    raise UpstreamBroke("dropping the connection mid-stream")
            finish = "stop"
        await emit(chunk({}, finish))
        if (payload.get("stream_options") or {}).get("include_usage"):
            usage = {**chunk({}), "choices": [], "usage": USAGE}
            await emit(usage)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
