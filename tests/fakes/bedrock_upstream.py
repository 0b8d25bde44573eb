"""A fake AWS Bedrock Runtime (Converse / ConverseStream), on :mod:`tests.fakes._base`.

Faithful to PROVIDERS.md §5: ``POST /model/{modelId}/converse[-stream]`` with the model
id percent-encoded, real ``application/vnd.amazon.eventstream`` frames (prelude and
message CRCs), errors as ``{"message": ...}`` with ``x-amzn-ErrorType``. Every request
must carry either the configured Bedrock API key as a bearer token or a SigV4
``Authorization`` header whose signature botocore recomputes from what arrived (the
same credentials, region, service ``bedrock`` and the ``X-Amz-Date`` received);
otherwise the answer is 403 ``UnrecognizedClientException`` / ``InvalidSignatureException``.

It answers per model id:

- any model: ``echo: <last user text>`` (`` [N image(s)]`` when it got images);
- ``tool-caller``: a ``get_weather`` toolUse (input streamed in three pieces);
- ``guarded``: a guardrail intervention (``stopReason: guardrail_intervened``);
  ``long``: ``stopReason: max_tokens``;
- ``fail-400`` / ``fail-403`` / ``fail-404`` / ``fail-408`` / ``fail-429`` / ``fail-500``
  / ``fail-503``: that Bedrock exception; ``fail-ctx``: "Input is too long";
- the shared stream cuts (:mod:`tests.fakes._base`); ``error-mid-stream`` is a
  ``modelStreamErrorException`` frame;
- a forced ``toolChoice.tool`` is obeyed: the answer is that tool's call alone, with an
  input its schema accepts (:func:`forced_tool`).

Embeddings through ``POST /model/{modelId}/invoke`` (signed the same way), by the model
family: Titan Text Embeddings (``amazon.titan-embed-text-v2:0``: one ``inputText``,
``dimensions`` of 256, 512 or 1024, ``normalize``; v1: ``inputText`` alone) answers
``embedding`` and ``inputTextTokenCount``; Cohere Embed (``cohere.embed-*``: ``texts``
up to 96 and a required ``input_type``) answers by type when ``embedding_types`` asks,
else a plain array, with the tokens in ``X-Amzn-Bedrock-Input-Token-Count``. Unknown
fields are a ``ValidationException``, as Bedrock's schemas refuse them.

``GET /async-invoke`` (the adapter's health probe) answers an empty list. Every request
is recorded (raw path, headers, query, JSON body) in :attr:`FakeBedrock.received`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import unquote, urlencode

import attrs
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes._base import (
    ARGUMENT_PIECES,
    Answer,
    FakeServer,
    Headers,
    Received,
    Reply,
    Stream,
    answer_text,
    echo,
    event_frame,
    exception_frame,
    frame,
    words,
)
from tests.fakes._vectors import fake_tokens, fake_vector
from tests.fakes.schema import instance

__all__ = ["FakeBedrock", "Received", "event_frame", "exception_frame", "frame"]

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream|invoke)$")
_TITAN_FIELDS = {"inputText", "dimensions", "normalize", "embeddingTypes"}
_COHERE_FIELDS = {"texts", "input_type", "truncate", "embedding_types", "output_dimension"}
_ERRORS = {
    400: ("ValidationException", "Malformed input request: temperature must be <= 1."),
    403: ("AccessDeniedException", "You don't have access to the model with this ID."),
    404: ("ResourceNotFoundException", "The provided model identifier is invalid."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "Too many connections, please wait."),
}
USAGE = {"inputTokens": 7, "outputTokens": 5, "totalTokens": 12}


@attrs.define
class FakeBedrock(FakeServer):
    region: str = "us-east-1"
    access_key: str = "AKIDFAKEEXAMPLE"
    secret_key: str = "fake-secret-key"
    session_token: str | None = None
    api_key: str | None = None

    HEADERS: ClassVar[Headers] = [(b"x-amzn-requestid", b"fake-request-1")]

    def answer(self, got: Received) -> Answer:
        refused = self._refusal(got.method, got.path, got.headers, got.raw, got.query)
        if refused is not None:
            return _error(403, *refused)
        if got.method == "GET" and got.path == "/async-invoke":
            return Reply(200, {"asyncInvokeSummaries": []})
        match = _PATH.match(got.path)
        if got.method != "POST" or match is None:
            return _error(404, "UnknownOperationException", "")
        if match["op"] == "invoke":
            return self.invoke(unquote(match["model"]), got)
        return self.scripted(unquote(match["model"]), got, stream=match["op"] == "converse-stream")

    def invoke(self, model: str, got: Received) -> Answer:
        """InvokeModel of an embeddings model, in its family's body."""
        if "titan-embed-text" in model:
            return self._titan(model, got)
        if "cohere.embed" in model:
            return self._cohere(model, got)
        scripted = self.embedding_script(model, got)
        return scripted or self.invalid(f"The model {model} does not support this body.")

    def _titan(self, model: str, got: Received) -> Answer:
        body = got.body
        v2 = "-v2" in model
        allowed = _TITAN_FIELDS if v2 else {"inputText"}
        extra = set(body) - allowed
        if extra or not isinstance(body.get("inputText"), str):
            return self.invalid(f"Malformed input request: extraneous key {sorted(extra)}")
        size = body.get("dimensions")
        if size is not None and size not in (256, 512, 1024):
            return self.invalid("Malformed input request: dimensions must be 256, 512 or 1024")
        scripted = self.embedding_script(model, got)
        if scripted is not None:
            return scripted
        text = body["inputText"]
        answer = {"embedding": fake_vector(text, size), "inputTextTokenCount": fake_tokens(text)}
        return Reply(200, answer)

    def _cohere(self, model: str, got: Received) -> Answer:
        body = got.body
        extra = set(body) - _COHERE_FIELDS
        texts = body.get("texts")
        if extra or not isinstance(texts, list) or not 0 < len(texts) <= 96:
            return self.invalid("Malformed input request: texts must hold 1 to 96 strings")
        if body.get("input_type") is None:
            return self.invalid("Malformed input request: input_type is required")
        scripted = self.embedding_script(model, got)
        if scripted is not None:
            return scripted
        size = body.get("output_dimension")
        vectors = [fake_vector(t, size) for t in texts]
        by_type = bool(body.get("embedding_types"))
        answer = {
            "id": "emb-fake-1",
            "texts": texts,
            "embeddings": {"float": vectors} if by_type else vectors,
            "response_type": "embeddings_by_type" if by_type else "embeddings_floats",
        }
        tokens = str(sum(fake_tokens(t) for t in texts)).encode()
        return Reply(200, answer, [(b"x-amzn-bedrock-input-token-count", tokens)])

    def failure(self, code: str, got: Received) -> Reply:
        if code == "ctx":
            return _error(400, "ValidationException", "Input is too long for requested model.")
        return _error(int(code), *_ERRORS[int(code)])

    def invalid(self, message: str) -> Reply:
        return _error(400, "ValidationException", message)

    def prefill(self, got: Received) -> str | None:
        return _prefill(got.body)

    def reply(self, model: str, got: Received) -> Reply:
        return Reply(200, _converse(model, got.body))

    def stream(self, model: str, got: Received) -> Stream:
        return _stream(model, got.body)

    def _refusal(
        self, method: str, path: str, headers: dict[str, str], body: bytes, query: dict[str, str]
    ) -> tuple[str, str] | None:
        """None when the request is authenticated, else Bedrock's (error type, message)."""
        invalid = (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return None if self.api_key and auth[7:] == self.api_key else invalid
        match = _AUTH.match(auth)
        if match is None or match["key"] != self.access_key:
            return invalid
        if self.session_token and headers.get("x-amz-security-token") != self.session_token:
            return invalid
        amz_date = headers.get("x-amz-date", "")
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return ("IncompleteSignatureException", "X-Amz-Date is missing or malformed.")
        if abs(datetime.now(UTC) - when) > timedelta(minutes=5):
            return ("InvalidSignatureException", "Signature expired: X-Amz-Date is too far off.")
        signed = match["signed"].split(";")
        if "host" not in signed or any(h not in headers for h in signed):
            return ("InvalidSignatureException", "SignedHeaders names a header not sent.")
        url = f"http://{headers['host']}{path}" + (f"?{urlencode(query)}" if query else "")
        request = AWSRequest(
            method=method, url=url, data=body, headers={h: headers[h] for h in signed}
        )
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(
            Credentials(self.access_key, self.secret_key, self.session_token),
            "bedrock",
            self.region,
        )
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if (match["date"], match["region"], match["service"]) != (
            amz_date[:8],
            self.region,
            "bedrock",
        ) or expected != match["signature"]:
            return (
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None


def _answer(payload: dict[str, Any]) -> str:
    for message in reversed(payload.get("messages") or []):
        if message["role"] == "user":
            texts = [b["text"] for b in message["content"] if "text" in b]
            images = sum(1 for b in message["content"] if "image" in b)
            if texts or images:
                return echo(texts, images)
    return "hello"


_TOOL_USE = {"toolUseId": "tooluse_fake1", "name": "get_weather"}


_STOPS = {"tool-caller": "tool_use", "guarded": "guardrail_intervened", "long": "max_tokens"}


def _prefill(payload: dict[str, Any]) -> str | None:
    messages = payload.get("messages") or []
    if not messages or messages[-1]["role"] != "assistant":
        return None
    return "".join(b["text"] for b in messages[-1]["content"] if "text" in b)


def _text(model: str, payload: dict[str, Any]) -> str:
    if model == "guarded":
        return "Sorry, the model cannot answer this question."
    return answer_text(model, _answer(payload), _prefill(payload))


def forced_tool(payload: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(name, input)`` of the call a forced ``toolChoice.tool`` makes: an input its
    ``inputSchema.json`` accepts."""
    config = payload.get("toolConfig") or {}
    name = ((config.get("toolChoice") or {}).get("tool") or {}).get("name")
    if name is None:
        return None
    spec = next(t["toolSpec"] for t in config["tools"] if t["toolSpec"]["name"] == name)
    return name, instance(spec["inputSchema"]["json"])


def _converse(model: str, payload: dict[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": _text(model, payload)}]
    forced = forced_tool(payload)
    if forced is not None:
        name, arguments = forced
        use = {"toolUseId": "tooluse_fake2", "name": name, "input": arguments}
        return {
            "output": {"message": {"role": "assistant", "content": [{"toolUse": use}]}},
            "stopReason": "tool_use",
            "usage": USAGE,
            "metrics": {"latencyMs": 42},
        }
    if model == "tool-caller":
        content = [
            {"text": "Let me check."},
            {"toolUse": {**_TOOL_USE, "input": {"city": "Paris"}}},
        ]
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _STOPS.get(model, "end_turn"),
        "usage": USAGE,
        "metrics": {"latencyMs": 42},
    }


def _stream(model: str, payload: dict[str, Any]) -> Stream:
    head = [event_frame("messageStart", {"role": "assistant", "p": "abcdefgh"})]
    forced = forced_tool(payload)
    stop = _STOPS.get(model, "end_turn")
    if forced is not None:
        use = {"toolUseId": "tooluse_fake2", "name": forced[0]}
        head.append(
            event_frame("contentBlockStart", {"contentBlockIndex": 0, "start": {"toolUse": use}})
        )
        text = orjson.dumps(forced[1]).decode()
        half = len(text) // 2
        deltas: list[dict[str, Any]] = [
            {"toolUse": {"input": p}} for p in (text[:half], text[half:])
        ]
        stop = "tool_use"
    elif model == "tool-caller":
        start = {"contentBlockIndex": 0, "start": {"toolUse": _TOOL_USE}}
        head.append(event_frame("contentBlockStart", start))
        deltas = [{"toolUse": {"input": p}} for p in ARGUMENT_PIECES]
    else:
        deltas = [{"text": w} for w in words(_text(model, payload))]
    pieces = [
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": d, "p": "xy"})
        for d in deltas
    ]
    metadata = {"usage": USAGE, "metrics": {"latencyMs": 42}}
    tail = [
        event_frame("contentBlockStop", {"contentBlockIndex": 0}),
        event_frame("messageStop", {"stopReason": stop}),
        event_frame("metadata", metadata),
    ]
    error = exception_frame("modelStreamErrorException", "The model stream broke.")
    garbage = frame(
        {
            ":event-type": "contentBlockDelta",
            ":content-type": "application/json",
            ":message-type": "event",
        },
        b'{"contentBlockIndex": 0, "delta": {"text": "unfin',
    )
    return Stream(
        head,
        pieces,
        tail,
        error,
        content_type=b"application/vnd.amazon.eventstream",
        garbage=garbage,
    )


def _error(status: int, kind: str, message: str) -> Reply:
    where = f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    return Reply(status, {"message": message}, [(b"x-amzn-errortype", where.encode())])
