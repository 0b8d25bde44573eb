"""A fake OpenAI Chat Completions server (PROVIDERS.md §1), on :mod:`tests.fakes._base`.

``POST /v1/chat/completions`` (``model`` and ``messages`` required); ``GET`` of any path
is the model list (what health probes ask for). With :attr:`FakeOpenAI.key` set it wants ``Authorization: Bearer <key>``
(OpenAI's 401 otherwise); without, it takes anything. Besides the shared script
(``fail-400|401|404|429|500|503``, ``fail-ctx``, ``silent``, the stream cuts, and
``error-mid-stream`` as a ``data: {"error": ...}`` event), by model:

- ``tool-caller``: a ``get_weather`` tool call (arguments streamed in pieces);
- ``long``: finish ``length``; ``unsafe``: finish ``content_filter``, no content;
- ``refuses``: :attr:`FakeOpenAI.REFUSAL` as the message's ``refusal`` (streamed as
  ``refusal`` deltas), no content, finish ``stop``, as a structured-output refusal;
- ``rich``: answers and chunks with ``system_fingerprint``, ``service_tier``, usage
  details and a host field of its own (``x_host``);
- ``fail-401`` echoes the key it got whole (OpenAI masks most of it: the worst case);
- ``flaky-429``: a 429 with ``retry-after-ms: 50`` on its first call, answers after;
- ``toggle-*``: 500 while :attr:`FakeOpenAI.down`, answers otherwise (``GET`` follows it);
- ``last-call``: an answer whose rate-limit headers say no request is left for 30 s;
- streams: ``no-done`` (ends after its finish without ``[DONE]``), ``malformed`` (a chunk
  of garbage after the first piece), ``stall-mid-stream`` ("first second", then silence).

``POST /v1/embeddings`` (``model`` and ``input`` required) answers a vector per input
(:mod:`tests.fakes._vectors`), as floats or, with ``encoding_format: "base64"``, packed;
``text-embedding-ada-002`` refuses ``dimensions`` as OpenAI does.

``POST /v1/completions`` is the legacy text completions API
(:mod:`tests.fakes._text_completions`); ``POST /v1/responses`` the Responses API, the
same script in its format (:mod:`tests.fakes._responses`).

With :attr:`FakeOpenAI.structured`, structured output is honoured
(:mod:`tests.fakes._openai_structured`): a
``response_format`` is answered with JSON its schema accepts, a forced ``tool_choice``
(a named function, or ``"required"``) with that call alone; ``tool-caller`` keeps its own call.

A request with ``logprobs: true`` gets OpenAI's ``logprobs`` (:func:`logprobs`: one
entry per word of the content) on its choice, or on each content chunk.
Models named like OpenAI's reasoning models (``o1``..., ``gpt-5``...) refuse ``max_tokens``
with OpenAI's 400 ``unsupported_parameter``.

Streams carry usage when ``stream_options.include_usage`` is set. A trailing assistant
message is answered anew, as OpenAI does, unless the body says to continue it as vLLM
(``continue_final_message``) or Mistral (``prefix`` on it) take it.
"""

from __future__ import annotations

import base64
import re
import struct
from typing import Any, ClassVar

import attrs

from tests.fakes._base import (
    ARGUMENT_PIECES,
    Answer,
    Cut,
    FakeServer,
    Received,
    Reply,
    Stream,
    UpstreamBroke,
    echo,
    running,
    sse,
    trailing_assistant_text,
    words,
)
from tests.fakes._openai_structured import forced_call, json_content
from tests.fakes._responses import responses
from tests.fakes._text_completions import text_completions
from tests.fakes._vectors import fake_tokens, fake_vector, inputs_of

__all__ = ["FakeOpenAI", "Received", "UpstreamBroke", "running"]

_ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    "400": (400, "invalid_request_error", "invalid_value", "Invalid value for 'temperature'."),
    "401": (401, "invalid_request_error", "invalid_api_key", "Incorrect API key provided: {}."),
    "404": (404, "invalid_request_error", "model_not_found", "The model does not exist."),
    "429": (429, "rate_limit_error", "rate_limit_exceeded", "Rate limit reached."),
    "500": (500, "server_error", None, "The server had an error."),
    "503": (503, "server_error", None, "The engine is currently overloaded."),
    "ctx": (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 8192 tokens.",
    ),
}
#: OpenAI's reasoning models, which refuse ``max_tokens`` as OpenAI does.
_REASONING = re.compile(r"o\d|gpt-5")
_FINISH = {"tool-caller": "tool_calls", "long": "length", "unsafe": "content_filter"}


def logprobs(text: str) -> dict[str, Any]:
    """OpenAI's ``logprobs`` for ``text``: a token per word (as the fakes stream it)."""
    entries = [
        {"token": w, "logprob": -0.5, "bytes": list(w.encode()), "top_logprobs": []}
        for w in words(text)
    ]
    return {"content": entries, "refusal": None}


def last_user(messages: list[dict[str, Any]]) -> str:
    """The echo of the last user turn, in Chat Completions' message shape."""
    for message in reversed(messages):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                return echo([content])
            texts = [p["text"] for p in content if p["type"] == "text"]
            return echo(texts, sum(1 for p in content if p["type"] == "image_url"))
    return "hello"


@attrs.define
class FakeOpenAI(FakeServer):
    key: str | None = None
    #: While True, ``toggle-*`` models and ``GET`` answer 500.
    down: bool = False
    #: Whether structured output is honoured; off, ``response_format`` is ignored and
    #: the text echoed, which the tests of what reaches the upstream read back.
    structured: bool = False

    ID: ClassVar[str] = "chatcmpl-fake1"
    #: Prompt and completion tokens of every answer.
    USAGE: ClassVar[tuple[int, int]] = (7, 5)
    #: Of those: prompt tokens read from the cache, completion tokens spent reasoning.
    DETAILS: ClassVar[tuple[int, int]] = (3, 2)
    CALL_ID: ClassVar[str] = "call_abc"
    REFUSAL: ClassVar[str] = "I'm sorry, I cannot help with that."

    def answer(self, got: Received) -> Answer:
        if got.method == "GET":
            return Reply(500 if self.down else 200, {"object": "list", "data": []})
        if self.key is not None and got.headers.get("authorization") != f"Bearer {self.key}":
            return self.failure("401", got)
        if got.path == "/v1/embeddings":
            return self.embeddings(got)
        if got.path == "/v1/completions":
            return text_completions(self, got)
        if got.path == "/v1/responses":
            return responses(self, got)
        if got.path != "/v1/chat/completions":
            return self.failure("404", got)
        missing = [name for name in ("model", "messages") if name not in got.body]
        if missing:
            error = {"type": "invalid_request_error", "param": missing[0], "code": None}
            return Reply(
                400, {"error": {"message": f"Missing required parameter: '{missing[0]}'.", **error}}
            )
        model = str(got.body["model"])
        if "max_tokens" in got.body and _REASONING.match(model):
            message = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
            error = {"type": "invalid_request_error", "param": "max_tokens"}
            return Reply(
                400, {"error": {"message": message, **error, "code": "unsupported_parameter"}}
            )
        return self.scripted(model, got, stream=bool(got.body.get("stream")))

    def scripted(self, model: str, got: Received, *, stream: bool) -> Answer:
        answer = super().scripted(model, got, stream=stream)
        if model == "flaky-429" and self.calls[model] == 1:
            return attrs.evolve(self.failure("429", got), headers=[(b"retry-after-ms", b"50")])
        if model.startswith("toggle-") and self.down:
            return self.failure("500", got)
        return answer

    def invalid(self, message: str) -> Reply:
        body = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
        return Reply(400, {"error": body})

    def embeddings(self, got: Received, model: str | None = None) -> Answer:
        """OpenAI's ``/embeddings``; ``model``: the deployment's (Azure's body has none)."""
        missing = [name for name in ("model", "input") if name not in got.body]
        if model is not None:
            missing = [name for name in missing if name != "model"]
        if missing:
            return self.invalid(f"Missing required parameter: '{missing[0]}'.")
        model = model or got.body["model"]
        scripted = self.embedding_script(model, got)
        if scripted is not None:
            return scripted
        dimensions = got.body.get("dimensions")
        if dimensions is not None and model.startswith("text-embedding-ada"):
            return self.invalid("This model does not support specifying dimensions.")
        packed = got.body.get("encoding_format") == "base64"
        inputs = inputs_of(got.body["input"])
        data = []
        for index, item in enumerate(inputs):
            vector: Any = fake_vector(item, dimensions)
            if packed:
                vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(fake_tokens(item) for item in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return Reply(200, {"object": "list", "data": data, "model": model, "usage": usage})

    def prefill(self, got: Received) -> str | None:
        return trailing_assistant_text(got)

    def answer_text(self, model: str, got: Received, default: str) -> str:
        wanted = json_content(got.body) if self.structured else None
        return wanted or super().answer_text(model, got, default)

    def continues(self, got: Received) -> bool:
        last = (got.body.get("messages") or [{}])[-1]
        return got.body.get("continue_final_message") is True or last.get("prefix") is True

    def failure(self, code: str, got: Received) -> Reply:
        status, kind, name, message = _ERRORS[code]
        key = got.headers.get("authorization", "").removeprefix("Bearer ")
        body = {"message": message.format(key), "type": kind, "param": None, "code": name}
        if code == "ctx":
            body["param"] = "messages"
        if code == "400":
            body["param"] = "temperature"
        retry = [(b"retry-after", b"2")] if status == 429 else []
        return Reply(status, {"error": body}, retry)

    def usage(self) -> dict[str, Any]:
        prompt, completion = self.USAGE
        cached, reasoning = self.DETAILS
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def answered(self, model: str) -> str:
        """The model an answer names."""
        return model + "-2024-08-06"

    def decorate(self, body: dict[str, Any]) -> dict[str, Any]:
        """Whatever the host adds to every answer and chunk."""
        return body

    def choice(self, choice: dict[str, Any]) -> dict[str, Any]:
        """Whatever the host adds to a choice."""
        return choice

    def reply(self, model: str, got: Received) -> Reply:
        finish = _FINISH.get(model, "stop")
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        forced = forced_call(got.body) if self.structured and model != "tool-caller" else None
        if forced is not None:
            message["tool_calls"], finish = [self._call(forced[1], forced[0])], forced[2]
        elif model == "tool-caller":
            arguments = "".join(ARGUMENT_PIECES)
            message["tool_calls"] = [self._call(arguments)]
        elif model == "refuses":
            message["refusal"] = self.REFUSAL
        elif finish != "content_filter":
            message["content"] = self.answer_text(model, got, last_user(got.body["messages"]))
        choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
        if got.body.get("logprobs") and message["content"]:
            choice["logprobs"] = logprobs(message["content"])
        body = {
            "id": self.ID,
            "object": "chat.completion",
            "created": 1700000000,
            "model": self.answered(model),
            "choices": [self.choice(choice)],
            "usage": self.usage(),
        }
        headers: list[tuple[bytes, bytes]] = []
        if model == "last-call":  # as OpenAI does: no request is left
            headers = [
                (b"x-ratelimit-remaining-requests", b"0"),
                (b"x-ratelimit-reset-requests", b"30s"),
            ]
        return Reply(200, self.decorate(_extras(model, body)), headers)

    def _call(self, arguments: str, name: str = "get_weather") -> dict[str, Any]:
        function = {"name": name, "arguments": arguments}
        return {"id": self.CALL_ID, "type": "function", "function": function}

    def _chunk(
        self,
        model: str,
        delta: dict[str, Any],
        finish: str | None = None,
        with_logprobs: bool = False,
    ) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        if with_logprobs and delta.get("content"):
            choice["logprobs"] = logprobs(delta["content"])
        return sse(self.decorate(_extras(model, self._chunk_body(model, [self.choice(choice)]))))

    def _chunk_body(self, model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.ID,
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": self.answered(model),
            "choices": choices,
        }

    def head(self) -> list[bytes]:
        """What the host sends before the role chunk."""
        return []

    def stream(self, model: str, got: Received) -> Stream:
        finish = _FINISH.get(model, "stop")
        forced = forced_call(got.body) if self.structured and model != "tool-caller" else None
        if forced is not None or model == "tool-caller":
            name, split = "get_weather", list(ARGUMENT_PIECES)
            if forced is not None:
                name, arguments, finish = forced
                split = [arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]]
            start = {"index": 0, **self._call("", name)}
            more = [{"index": 0, "function": {"arguments": p}} for p in split if p]
            pieces = [self._chunk(model, {"tool_calls": [c]}) for c in [start, *more]]
        elif finish == "content_filter":
            pieces = []
        elif model == "refuses":
            pieces = [self._chunk(model, {"refusal": w}) for w in words(self.REFUSAL)]
        else:
            text = self.answer_text(model, got, last_user(got.body["messages"]))
            if model == "stall-mid-stream":
                text = "first second"
            scored = bool(got.body.get("logprobs"))
            pieces = [self._chunk(model, {"content": w}, None, scored) for w in words(text)]
        tail = [self._chunk(model, {}, finish)]
        if (got.body.get("stream_options") or {}).get("include_usage"):
            usage = {**self._chunk_body(model, []), "usage": self.usage()}
            tail.append(sse(self.decorate(_extras(model, usage))))
        error = {"message": "The server had an error.", "type": "server_error"}
        return Stream(
            head=[*self.head(), self._chunk(model, {"role": "assistant", "content": ""})],
            pieces=pieces,
            tail=[*tail, b"data: [DONE]\n\n"],
            error=sse({"error": {**error, "param": None, "code": None}}),
        )

    def cut(self, model: str, stream: Stream) -> list[bytes | Cut]:
        if model == "malformed":
            return [*stream.head, *stream.pieces[:1], b"data: {this is not json}\n\n"]
        if model == "no-done":
            return [*stream.head, *stream.pieces, *stream.tail[:-1]]
        return super().cut(model, stream)


def _extras(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """The ``rich`` model's answers carry what OpenAI adds beyond the basics, and a
    field of the host's own, for passthrough to show it all arrives."""
    if model != "rich":
        return body
    extras: dict[str, Any] = {
        "system_fingerprint": "fp_rich",
        "service_tier": "priority",
        "x_host": {"region": "eu-1"},
    }
    if "usage" in body:
        extras["usage"] = {
            **body["usage"],
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 2},
        }
    return {**body, **extras}
