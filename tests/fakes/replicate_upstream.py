"""A fake Replicate predictions API (``https://api.replicate.com/v1``).

``POST /v1/models/{owner}/{name}/predictions`` and ``POST /v1/predictions`` (with
``version``) create a prediction from ``{"input": {"prompt", ...}, "stream"}``;
``GET /v1/predictions/{id}`` reads it, ``POST /v1/predictions/{id}/cancel`` cancels it
(recorded in :attr:`FakeReplicate.canceled`, which sets :attr:`cancel_seen`);
``GET /v1/stream/{id}`` is its SSE stream (Replicate's is on ``stream.replicate.com``:
here on the fake itself); ``GET /v1/account`` answers the account. Every request wants
``Authorization: Bearer <token>``; errors are problem details ``{"title", "detail",
"status"}`` (a 429 with ``Retry-After: 7``).

A created prediction (the model's ``name`` is its script) honours ``Prefer: wait``: it
answers ``succeeded`` with ``output`` (a list of word pieces of ``echo: <prompt>``)
and ``metrics`` (``input_token_count``, ``output_token_count``) at once, except:

- ``slow``: ``starting``; read once, ``processing``; read again, ``succeeded``;
- ``silent``: ``starting``, then ``processing`` forever; its stream never sends;
- ``crash``: ``failed`` with an ``error``;
- ``fail-<code>``: the create fails with that status;
- streams (``"stream": true``): ``starting`` with ``urls.stream``; the stream sends an
  ``output`` event per word, then ``done``; the shared cuts apply to it, and
  ``error-mid-stream`` ends with an ``error`` event.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import attrs
import trio

from tests.fakes._base import (
    SILENT,
    Answer,
    Chunks,
    FakeServer,
    Received,
    Reply,
    Stream,
    answer_text,
    echo,
    sse,
    words,
)

__all__ = ["FakeReplicate"]

_CREATE = re.compile(r"/v1/models/([^/]+)/([^/]+)/predictions")
_ONE = re.compile(r"/v1/predictions/([a-z0-9]+)(/cancel)?")
_STREAM = re.compile(r"/v1/stream/([a-z0-9]+)")
_ERRORS = {
    "400": (400, "Bad Request", "Invalid input: prompt is required"),
    "401": (401, "Unauthenticated", "You did not pass a valid authentication token"),
    "402": (402, "Payment Required", "You have insufficient credit to run this model"),
    "404": (404, "Not found", "The requested resource could not be found"),
    "422": (422, "Input validation failed", "- input.temperature: Must be less than 5"),
    "429": (429, "Request was throttled", "Request was throttled. Expected available in 7s."),
    "500": (500, "Internal Server Error", "Internal Server Error"),
    "503": (503, "Service Unavailable", "Service Unavailable"),
}


@attrs.define
class Prediction:
    id: str
    script: str
    body: dict[str, Any]
    status: str
    reads: int = 0


@attrs.define
class FakeReplicate(FakeServer):
    token: str = "r8_fake"
    predictions: dict[str, Prediction] = attrs.field(factory=dict)
    #: Ids of predictions cancelled, in order.
    canceled: list[str] = attrs.field(factory=list)
    cancel_seen: trio.Event = attrs.field(factory=trio.Event)
    #: Set when a prediction was first read (polled, or its stream opened).
    read_seen: trio.Event = attrs.field(factory=trio.Event)

    INPUT_TOKENS: ClassVar[int] = 11

    def answer(self, got: Received) -> Answer:
        if got.headers.get("authorization") != f"Bearer {self.token}":
            return self.failure("401", got)
        if got.method == "GET" and got.path == "/v1/account":
            return Reply(200, {"type": "user", "username": "fake", "name": "Fake"})
        create = _CREATE.fullmatch(got.path)
        if got.method == "POST" and (create or got.path == "/v1/predictions"):
            script = create.group(2) if create else str(got.body.get("version") or "")
            return self.create(script, got)
        one = _ONE.fullmatch(got.path)
        if one and one.group(1) in self.predictions:
            prediction = self.predictions[one.group(1)]
            if got.method == "POST" and one.group(2):
                return self.cancel(prediction)
            if got.method == "GET" and not one.group(2):
                return self.read(prediction)
        stream = _STREAM.fullmatch(got.path)
        if got.method == "GET" and stream and stream.group(1) in self.predictions:
            return self.stream_of(self.predictions[stream.group(1)], got)
        return self.failure("404", got)

    def failure(self, code: str, got: Received) -> Reply:
        status, title, detail = _ERRORS[code]
        headers = [(b"retry-after", b"7")] if status == 429 else []
        return Reply(status, {"title": title, "detail": detail, "status": status}, headers)

    def invalid(self, message: str) -> Reply:
        return Reply(422, {"title": "Input validation failed", "detail": message, "status": 422})

    def create(self, script: str, got: Received) -> Answer:
        self.calls[script] = self.calls.get(script, 0) + 1
        values = got.body.get("input")
        if not isinstance(values, dict) or not isinstance(values.get("prompt"), str):
            return self.invalid("- input: prompt is required")
        if script.startswith("fail-"):
            return self.failure(script.removeprefix("fail-"), got)
        stream = got.body.get("stream") is True
        status = "starting" if stream or script in ("slow", "silent") else "succeeded"
        if script == "crash":
            status = "failed"
        prediction = Prediction(f"p{len(self.predictions) + 1:04d}xyz", script, got.body, status)
        self.predictions[prediction.id] = prediction
        return Reply(201, self.prediction(prediction))

    def read(self, prediction: Prediction) -> Reply:
        self.read_seen.set()
        prediction.reads += 1
        if prediction.status in ("starting", "processing"):
            done = prediction.script == "slow" and prediction.reads >= 2
            done = done or (prediction.body.get("stream") is True and prediction.reads >= 1)
            done = done and prediction.script != "silent"
            prediction.status = "succeeded" if done else "processing"
        return Reply(200, self.prediction(prediction))

    def cancel(self, prediction: Prediction) -> Reply:
        if prediction.status in ("starting", "processing"):
            prediction.status = "canceled"
        self.canceled.append(prediction.id)
        self.cancel_seen.set()
        return Reply(200, self.prediction(prediction))

    def text(self, prediction: Prediction) -> str:
        prompt = prediction.body["input"]["prompt"]
        return answer_text(prediction.script, echo([prompt]))

    def prediction(self, prediction: Prediction) -> dict[str, Any]:
        base = self.url
        urls = {
            "get": f"{base}/predictions/{prediction.id}",
            "cancel": f"{base}/predictions/{prediction.id}/cancel",
            "web": f"https://replicate.com/p/{prediction.id}",
        }
        if prediction.body.get("stream") is True:
            urls["stream"] = f"{base}/stream/{prediction.id}"
        output = words(self.text(prediction)) if prediction.status == "succeeded" else None
        body: dict[str, Any] = {
            "id": prediction.id,
            "model": prediction.script,
            "version": prediction.body.get("version", "dp-4d6fa1e2"),
            "input": prediction.body["input"],
            "logs": "",
            "output": output,
            "data_removed": False,
            "error": "CUDA out of memory" if prediction.status == "failed" else None,
            "status": prediction.status,
            "created_at": "2025-03-01T12:00:00.000Z",
            "urls": urls,
        }
        if output is not None:
            body["metrics"] = {
                "input_token_count": self.INPUT_TOKENS,
                "output_token_count": len(output),
                "predict_time": 0.4,
            }
        return body

    def stream_of(self, prediction: Prediction, got: Received) -> Answer:
        self.read_seen.set()
        if prediction.script == "silent":
            return SILENT
        pieces = [sse(w.encode(), event="output") for w in words(self.text(prediction))]
        error = sse(b'{"detail": "the model crashed"}', event="error")
        answer = Stream(head=[], pieces=pieces, tail=[sse(b"{}", event="done")], error=error)
        return Chunks(answer, self.cut(prediction.script, answer))
