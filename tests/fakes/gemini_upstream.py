"""A fake Gemini API (``v1beta``), served with ``tests.fakes.openai_upstream.running``.

Faithful to PROVIDERS.md §3: ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent`` (SSE with ``?alt=sse``, else a JSON array), ``GET
/v1beta/models``; the key from ``x-goog-api-key`` or ``?key=`` (missing: 403
``PERMISSION_DENIED``; wrong: Gemini's **400** ``API_KEY_INVALID``); camelCase bodies,
unknown fields refused, and the role rules (``user``/``model`` only, alternating, ``user``
first, no empty parts) enforced with Gemini's 400. Answers by model id:

- any model: ``echo: <last user text>``, or the user's texts plus ``[N image(s)]``
  when it holds ``inlineData``, or ``tool said: <output>`` when the last turn is a
  ``functionResponse``; streamed word by word with cumulative ``usageMetadata``;
- ``tool-caller``: a whole ``get_weather({"city": "Paris"})`` call, without an id;
  ``two-tools``: ``get_weather`` and ``get_time`` in one turn;
- ``fail-400|401|403|404|429|500|503|504``: that error in Gemini's shape (429 with a
  ``RetryInfo`` of ``"7s"``); ``fail-ctx``: the 400 "input token count exceeds";
- ``blocked``: the prompt refused (``promptFeedback.blockReason``, no candidates);
  ``unsafe``: an answer cut off with ``finishReason: SAFETY``; ``max-tokens``: cut off
  with ``MAX_TOKENS``;
- streams: ``break-mid-stream`` (the connection drops after two events), ``truncated``
  (a clean end with no ``finishReason``), ``error-mid-stream`` (an ``error`` event).

Every request is recorded (path, query, headers, JSON body) in :attr:`FakeGemini.received`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

import attrs
import orjson

from tests.fakes.openai_upstream import UpstreamBroke

_TOP_LEVEL = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "safetySettings",
        "cachedContent",
        "generationConfig",
    }
)
_GENERATION = frozenset(
    {
        "temperature",
        "topP",
        "topK",
        "candidateCount",
        "maxOutputTokens",
        "stopSequences",
        "presencePenalty",
        "frequencyPenalty",
        "seed",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseLogprobs",
        "logprobs",
        "thinkingConfig",
    }
)
_PART_KINDS = frozenset({"text", "inlineData", "fileData", "functionCall", "functionResponse"})
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Invalid value at 'generation_config.temperature' (TYPE_FLOAT)."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "models/fail-404 is not found for API version v1beta."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota."),
    500: ("INTERNAL", "An internal error has occurred."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
USAGE = {
    "promptTokenCount": 7,
    "candidatesTokenCount": 5,
    "thoughtsTokenCount": 2,
    "totalTokenCount": 14,
}


@attrs.define
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


class BadRequest(Exception):
    """A request the real API refuses with 400 INVALID_ARGUMENT."""


@attrs.define
class FakeGemini:
    key: str = "gm-test-key"
    received: list[Received] = attrs.field(factory=list)
    #: ``http://host:port/v1beta`` once served.
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        query = dict(parse_qsl(scope["query_string"].decode()))
        path = scope["raw_path"].decode()
        payload = orjson.loads(body) if body else {}
        self.received.append(Received(path, query, headers, payload))
        key = headers.get("x-goog-api-key") or query.get("key")
        if not key:
            message = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity."
            )
            await _error(send, 403, "PERMISSION_DENIED", message)
            return
        if key != self.key:
            info = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
            message = "API key not valid. Please pass a valid API key."
            await _error(send, 400, "INVALID_ARGUMENT", message, [info])
            return
        if scope["method"] == "GET" and path == "/v1beta/models":
            models = [{"name": "models/gemini-2.5-flash", "inputTokenLimit": 1048576}]
            await _json(send, 200, {"models": models})
            return
        prefix, _, method = path.rpartition(":")
        if scope["method"] != "POST" or not prefix.startswith("/v1beta/models/"):
            await _error(send, 404, "NOT_FOUND", f"no route for {path}")
            return
        model = unquote(prefix.removeprefix("/v1beta/models/"))
        if method not in ("generateContent", "streamGenerateContent"):
            await _error(send, 404, "NOT_FOUND", f"unknown method {method}")
            return
        try:
            _validate(payload)
        except BadRequest as exc:
            await _error(send, 400, "INVALID_ARGUMENT", str(exc))
            return
        if model.startswith("fail-"):
            await _fail(send, model)
            return
        if method == "generateContent":
            await _json(send, 200, _response(model, payload))
            return
        await _stream(send, model, payload, sse=query.get("alt") == "sse")


def _validate(payload: dict[str, Any]) -> None:
    for name in payload:
        if name not in _TOP_LEVEL:
            raise BadRequest(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
            )
    for name in payload.get("generationConfig") or {}:
        if name not in _GENERATION:
            raise BadRequest(
                f'Invalid JSON payload received. Unknown name "{name}" at '
                "'generation_config': Cannot find field."
            )
    contents = payload.get("contents")
    if not contents:
        raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
    previous = None
    for i, content in enumerate(contents):
        role = content.get("role", "user")
        if role not in ("user", "model") or role == previous or (i == 0 and role != "user"):
            raise BadRequest(
                "Please ensure that multiturn requests alternate between user and model."
            )
        previous = role
        if not content.get("parts"):
            raise BadRequest(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        for part in content["parts"]:
            if len(part) != 1 or next(iter(part)) not in _PART_KINDS or part.get("text") == "":
                raise BadRequest(f"* GenerateContentRequest.contents[{i}].parts: invalid part")


def _answer(payload: dict[str, Any]) -> str:
    last = payload["contents"][-1]["parts"]
    results = [p["functionResponse"] for p in last if "functionResponse" in p]
    if results:
        return "tool said: " + "; ".join(str(r["response"].get("output")) for r in results)
    texts = [p["text"] for p in last if "text" in p]
    images = sum(1 for p in last if "inlineData" in p)
    if images:
        return " ".join(texts) + f" [{images} image(s)]"
    return "echo: " + " ".join(texts)


def _calls(model: str) -> list[dict[str, Any]]:
    calls = [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]
    if model == "two-tools":
        calls.append({"functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}}})
    return calls


def _event(
    model: str, parts: list[dict[str, Any]] | None, finish: str | None, usage: dict[str, int]
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": f"{model}-001",
        "responseId": "fake-resp-1",
    }


_BLOCKED = {
    "promptFeedback": {
        "blockReason": "SAFETY",
        "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
        ],
    },
    "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    "modelVersion": "blocked-001",
    "responseId": "fake-resp-1",
}


def _response(model: str, payload: dict[str, Any]) -> dict[str, Any]:
    if model == "blocked":
        return _BLOCKED
    if model == "unsafe":
        return _event(model, None, "SAFETY", USAGE)
    if model in ("tool-caller", "two-tools"):
        return _event(model, _calls(model), "STOP", USAGE)
    finish = "MAX_TOKENS" if model == "max-tokens" else "STOP"
    return _event(model, [{"text": _answer(payload)}], finish, USAGE)


def _events(model: str, payload: dict[str, Any]) -> list[dict[str, Any] | None]:
    """The stream's events; None stands for "drop the connection here"."""
    if model == "blocked":
        return [_BLOCKED]
    early = {"promptTokenCount": 7, "totalTokenCount": 7}  # cumulative: prompt first
    if model in ("tool-caller", "two-tools"):
        return [_event(model, _calls(model), "STOP", USAGE)]
    if model == "unsafe":
        return [
            _event(model, [{"text": "I was about"}], None, early),
            _event(model, None, "SAFETY", USAGE),
        ]
    words = _answer(payload).split(" ")
    events: list[dict[str, Any] | None] = [
        _event(model, [{"text": w if i == 0 else " " + w}], None, early)
        for i, w in enumerate(words)
    ]
    if model == "break-mid-stream":
        return [*events[:2], None]
    if model == "truncated":
        return events
    if model == "error-mid-stream":
        error = {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
        return [events[0], {"error": error}]
    finish = "MAX_TOKENS" if model == "max-tokens" else "STOP"
    events.append(_event(model, [{"text": ""}], finish, USAGE))
    return events


async def _stream(send: Any, model: str, payload: dict[str, Any], *, sse: bool) -> None:
    kind = b"text/event-stream" if sse else b"application/json"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
    for i, event in enumerate(_events(model, payload)):
        if event is None:
            raise UpstreamBroke("dropping the connection mid-stream")
        if sse:
            data = b"data: " + orjson.dumps(event) + b"\r\n\r\n"
        else:  # the JSON-array mode, sent element by element
            data = (b"[" if i == 0 else b",\r\n") + orjson.dumps(event)
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"" if sse else b"]"})


async def _fail(send: Any, model: str) -> None:
    if model == "fail-ctx":
        message = (
            "The input token count (1048577) exceeds the maximum number of tokens "
            "allowed (1048576)."
        )
        await _error(send, 400, "INVALID_ARGUMENT", message)
        return
    code = int(model.removeprefix("fail-"))
    status, message = _ERRORS[code]
    details: list[dict[str, Any]] = []
    if code == 429:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaMetric": "generate_content_free_tier_requests"}],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
        ]
    await _error(send, code, status, message, details)


async def _error(
    send: Any, code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> None:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    await _json(send, code, {"error": error})


async def _json(send: Any, status: int, body: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json; charset=UTF-8")],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
