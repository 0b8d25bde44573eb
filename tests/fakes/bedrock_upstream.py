"""A fake AWS Bedrock Runtime (Converse / ConverseStream), served on 127.0.0.1:0.

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
- ``fail-400`` / ``fail-403`` / ``fail-404`` / ``fail-408`` / ``fail-429`` / ``fail-500``
  / ``fail-503``: that Bedrock exception; ``fail-ctx``: "Input is too long";
- streams: ``break-mid-stream`` (two deltas, then the connection drops),
  ``stream-exception`` (a ``modelStreamErrorException`` frame after one delta).

``GET /async-invoke`` (the adapter's health probe) answers an empty list. Every request
is recorded (raw path, headers, query, JSON body) in :attr:`FakeBedrock.received`.
"""

from __future__ import annotations

import binascii
import re
import struct
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import attrs
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.openai_upstream import UpstreamBroke

__all__ = ["FakeBedrock", "Received", "event_frame", "exception_frame", "frame"]

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>converse|converse-stream)$")
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


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude, its CRC, string headers, payload, message CRC."""
    head = b""
    for name, value in headers.items():
        raw = value.encode()
        head += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(raw)) + raw
    prelude = struct.pack(">II", 12 + len(head) + len(payload) + 4, len(head))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + head + payload
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


def event_frame(event: str, payload: dict[str, Any]) -> bytes:
    headers = {
        ":event-type": event,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return frame(headers, orjson.dumps(payload))


def exception_frame(kind: str, message: str) -> bytes:
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, orjson.dumps({"message": message}))


@attrs.define
class Received:
    path: str  # raw, as sent: the model id still percent-encoded
    headers: dict[str, str]
    query: str
    body: dict[str, Any]


@attrs.define
class FakeBedrock:
    region: str = "us-east-1"
    access_key: str = "AKIDFAKEEXAMPLE"
    secret_key: str = "fake-secret-key"
    session_token: str | None = None
    api_key: str | None = None
    received: list[Received] = attrs.field(factory=list)
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
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        path = scope["raw_path"].decode()
        query = scope["query_string"].decode()
        payload = orjson.loads(body) if body else {}
        self.received.append(Received(path, headers, query, payload))
        refused = self._refusal(scope["method"], path, query, headers, body)
        if refused is not None:
            await _error(send, 403, *refused)
            return
        if scope["method"] == "GET" and path == "/async-invoke":
            await _json(send, 200, {"asyncInvokeSummaries": []})
            return
        match = _PATH.match(path)
        if scope["method"] != "POST" or match is None:
            await _error(send, 404, "UnknownOperationException", "")
            return
        model = unquote(match["model"])
        if model == "fail-ctx":
            await _error(send, 400, "ValidationException", "Input is too long for requested model.")
        elif model.startswith("fail-"):
            status = int(model[5:])
            await _error(send, status, *_ERRORS[status])
        elif match["op"] == "converse-stream":
            await _stream(send, model, payload)
        else:
            await _json(send, 200, _converse(model, payload))

    def _refusal(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
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
        url = f"http://{headers['host']}{path}" + (f"?{query}" if query else "")
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
                return "echo: " + " ".join(texts) + (f" [{images} image(s)]" if images else "")
    return "hello"


_TOOL_USE = {"toolUseId": "tooluse_fake1", "name": "get_weather"}


def _converse(model: str, payload: dict[str, Any]) -> dict[str, Any]:
    if model == "tool-caller":
        content: list[dict[str, Any]] = [
            {"text": "Let me check."},
            {"toolUse": {**_TOOL_USE, "input": {"city": "Paris"}}},
        ]
        stop = "tool_use"
    elif model == "guarded":
        content = [{"text": "Sorry, the model cannot answer this question."}]
        stop = "guardrail_intervened"
    else:
        content = [{"text": _answer(payload)}]
        stop = "end_turn"
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": USAGE,
        "metrics": {"latencyMs": 42},
    }


async def _stream(send: Any, model: str, payload: dict[str, Any]) -> None:
    headers = [
        (b"content-type", b"application/vnd.amazon.eventstream"),
        (b"x-amzn-requestid", b"fake-request-1"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})

    async def emit(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    await emit(event_frame("messageStart", {"role": "assistant", "p": "abcdefgh"}))
    if model == "tool-caller":
        start = {"contentBlockIndex": 0, "start": {"toolUse": _TOOL_USE}}
        await emit(event_frame("contentBlockStart", start))
        for piece in ('{"city"', ':"Par', 'is"}'):
            delta = {"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}}
            await emit(event_frame("contentBlockDelta", delta))
        stop = "tool_use"
    else:
        words = _answer(payload).split(" ")
        for i, word in enumerate(words):
            text = word if i == 0 else " " + word
            delta = {"contentBlockIndex": 0, "delta": {"text": text}, "p": "xy"}
            await emit(event_frame("contentBlockDelta", delta))
            if model == "break-mid-stream" and i == 1:
                raise UpstreamBroke("dropping the connection mid-stream")
            if model == "stream-exception":
                await emit(exception_frame("modelStreamErrorException", "The model stream broke."))
                await send({"type": "http.response.body", "body": b""})
                return
        stop = "end_turn"
    await emit(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
    await emit(event_frame("messageStop", {"stopReason": stop}))
    metadata = {"usage": USAGE, "metrics": {"latencyMs": 42}}
    await send({"type": "http.response.body", "body": event_frame("metadata", metadata)})


async def _error(send: Any, status: int, kind: str, message: str) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (
            b"x-amzn-errortype",
            f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/".encode(),
        ),
        (b"x-amzn-requestid", b"fake-request-1"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps({"message": message})})


async def _json(send: Any, status: int, body: Any) -> None:
    headers = [(b"content-type", b"application/json"), (b"x-amzn-requestid", b"fake-request-1")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
