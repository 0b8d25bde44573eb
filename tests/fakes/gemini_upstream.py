"""A fake Gemini API (``v1beta``), on :mod:`tests.fakes._base`.

Faithful to PROVIDERS.md §3: ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent`` (SSE with ``?alt=sse``, else a JSON array), ``GET
/v1beta/models``; the key from ``x-goog-api-key`` or ``?key=`` (missing: 403
``PERMISSION_DENIED``; wrong: Gemini's **400** ``API_KEY_INVALID``); camelCase bodies,
unknown fields refused, and the role rules (``user``/``model`` only, alternating, ``user``
first, no empty parts) enforced with Gemini's 400. Answers by model id:

- any model: ``echo: <last user text>`` (plus ``[N image(s)]`` when it holds
  ``inlineData``), or ``tool said: <output>`` when the last turn is a
  ``functionResponse``; streamed word by word with cumulative ``usageMetadata``;
- ``tool-caller``: a whole ``get_weather({"city": "Paris"})`` call, without an id;
  ``two-tools``: ``get_weather`` and ``get_time`` in one turn;
- ``fail-400|401|403|404|429|500|503|504``: that error in Gemini's shape (429 with a
  ``RetryInfo`` of ``"7s"``); ``fail-ctx``: the 400 "input token count exceeds";
- ``blocked``: the prompt refused (``promptFeedback.blockReason``, no candidates);
  ``unsafe``: an answer cut off with ``finishReason: SAFETY``; ``long``: cut off
  with ``MAX_TOKENS``;
- the shared stream cuts (:mod:`tests.fakes._base`); ``error-mid-stream`` is an
  ``error`` event;
- ``responseMimeType: application/json``: the text is JSON, an instance of
  ``responseJsonSchema`` (or ``responseSchema``), else ``{"echo": ...}``.

Embeddings: ``:embedContent`` (one ``content``) and ``:batchEmbedContents`` (at most 100
``requests``, each naming the same ``models/{model}``), unknown fields refused, and
``outputDimensionality`` refused by ``embedding-001``; a vector per text
(:mod:`tests.fakes._vectors`), and no token counts, as Gemini gives none.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import unquote

import attrs
import orjson

from tests.fakes._base import (
    Answer,
    FakeServer,
    Received,
    Reply,
    Stream,
    answer_text,
    echo,
    sse,
    words,
)
from tests.fakes._vectors import fake_vector
from tests.fakes.schema import instance

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


class BadRequest(Exception):
    """A request the real API refuses with 400 INVALID_ARGUMENT."""


@attrs.define
class FakeGemini(FakeServer):
    key: str = "gm-test-key"

    JSON_TYPE: ClassVar[bytes] = b"application/json; charset=UTF-8"

    def answer(self, got: Received) -> Answer:
        key = got.headers.get("x-goog-api-key") or got.query.get("key")
        if not key:
            message = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity."
            )
            return _error(403, "PERMISSION_DENIED", message)
        if key != self.key:
            info = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
            message = "API key not valid. Please pass a valid API key."
            return _error(400, "INVALID_ARGUMENT", message, [info])
        if got.method == "GET" and got.path == "/v1beta/models":
            models = [{"name": "models/gemini-2.5-flash", "inputTokenLimit": 1048576}]
            return Reply(200, {"models": models})
        prefix, _, method = got.path.rpartition(":")
        if got.method != "POST" or not prefix.startswith("/v1beta/models/"):
            return _error(404, "NOT_FOUND", f"no route for {got.path}")
        if method in ("embedContent", "batchEmbedContents"):
            model = unquote(prefix.removeprefix("/v1beta/models/"))
            return self.embeddings(model, method, got)
        if method not in ("generateContent", "streamGenerateContent"):
            return _error(404, "NOT_FOUND", f"unknown method {method}")
        try:
            _validate(got.body)
        except BadRequest as exc:
            return _error(400, "INVALID_ARGUMENT", str(exc))
        model = unquote(prefix.removeprefix("/v1beta/models/"))
        return self.scripted(model, got, stream=method == "streamGenerateContent")

    def embeddings(self, model: str, method: str, got: Received) -> Answer:
        try:
            requests = _embed_requests(model, method, got.body)
        except BadRequest as exc:
            return _error(400, "INVALID_ARGUMENT", str(exc))
        scripted = self.embedding_script(model, got)
        if scripted is not None:
            return scripted
        values = [{"values": fake_vector(text, size)} for text, size in requests]
        if method == "embedContent":
            return Reply(200, {"embedding": values[0]})
        return Reply(200, {"embeddings": values})

    def failure(self, code: str, got: Received) -> Reply:
        if code == "ctx":
            message = (
                "The input token count (1048577) exceeds the maximum number of tokens "
                "allowed (1048576)."
            )
            return _error(400, "INVALID_ARGUMENT", message)
        status, message = _ERRORS[int(code)]
        details: list[dict[str, Any]] = []
        if code == "429":
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generate_content_free_tier_requests"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
            ]
        return _error(int(code), status, message, details)

    def invalid(self, message: str) -> Reply:
        return _error(400, "INVALID_ARGUMENT", message)

    def prefill(self, got: Received) -> str | None:
        return _prefill(got.body)

    def reply(self, model: str, got: Received) -> Reply:
        return Reply(200, _response(model, got.body))

    def stream(self, model: str, got: Received) -> Stream:
        sse_mode = got.query.get("alt") == "sse"
        events = _events(model, got.body)
        error = {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
        framed = [_framed(i, e, sse_mode) for i, e in enumerate([*events, {"error": error}])]
        pieces, tail = framed[: len(events) - 1], framed[len(events) - 1 : -1]
        content_type = b"text/event-stream" if sse_mode else b"application/json"
        end = b"" if sse_mode else b"]"
        garbage = b'data: {"candidates": [\r\n\r\n' if sse_mode else b',\r\n{"candidates": ['
        return Stream([], pieces, tail, framed[-1], end, content_type, garbage=garbage)


def _framed(index: int, event: dict[str, Any], sse_mode: bool) -> bytes:
    if sse_mode:
        return sse(event, eol=b"\r\n")
    # the JSON-array mode, sent element by element
    return (b"[" if index == 0 else b",\r\n") + orjson.dumps(event)


_EMBED_FIELDS = frozenset({"model", "content", "taskType", "title", "outputDimensionality"})


def _embed_requests(model: str, method: str, body: dict[str, Any]) -> list[tuple[str, int | None]]:
    """``(text, outputDimensionality)`` of each request. Raises BadRequest."""
    if method == "embedContent":
        requests = [body]
    else:
        if set(body) != {"requests"}:
            raise BadRequest("* BatchEmbedContentsRequest.requests: requests is not specified")
        requests = body["requests"]
        if len(requests) > 100:
            raise BadRequest(
                "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch"
            )
    out = []
    for one in requests:
        for name in one:
            if name not in _EMBED_FIELDS:
                raise BadRequest(
                    f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
                )
        if method == "batchEmbedContents" and one.get("model") != f"models/{model}":
            raise BadRequest(
                f"Model names in the requests must match models/{model} of the batch request."
            )
        parts = (one.get("content") or {}).get("parts") or []
        if not parts or not all(isinstance(p.get("text"), str) for p in parts):
            raise BadRequest("* EmbedContentRequest.content: contains an empty Part.")
        size = one.get("outputDimensionality")
        if size is not None and model == "embedding-001":
            raise BadRequest("outputDimensionality is not supported for models/embedding-001.")
        out.append(("".join(p["text"] for p in parts), size))
    return out


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


def _prefill(payload: dict[str, Any]) -> str | None:
    last = payload["contents"][-1]
    if last.get("role") != "model":
        return None
    return "".join(p.get("text", "") for p in last["parts"])


def _answer(model: str, payload: dict[str, Any]) -> str:
    """The answer to the last user turn, continuing a final ``model`` turn; JSON when
    the request asks for it (an instance of its schema, else the echo in an object)."""
    users = [c for c in payload["contents"] if c.get("role", "user") == "user"]
    text = _echo(users[-1]["parts"])
    config = payload.get("generationConfig") or {}
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        return orjson.dumps(instance(schema) if schema else {"echo": text}).decode()
    return answer_text(model, text, _prefill(payload))


def _echo(last: list[dict[str, Any]]) -> str:
    results = [p["functionResponse"] for p in last if "functionResponse" in p]
    if results:
        return "tool said: " + "; ".join(str(r["response"].get("output")) for r in results)
    texts = [p["text"] for p in last if "text" in p]
    return echo(texts, sum(1 for p in last if "inlineData" in p))


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
    finish = "MAX_TOKENS" if model == "long" else "STOP"
    return _event(model, [{"text": _answer(model, payload)}], finish, USAGE)


def _events(model: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of a whole streamed answer."""
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
    events = [_event(model, [{"text": w}], None, early) for w in words(_answer(model, payload))]
    finish = "MAX_TOKENS" if model == "long" else "STOP"
    return [*events, _event(model, [{"text": ""}], finish, USAGE)]


def _error(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return Reply(code, {"error": error})
