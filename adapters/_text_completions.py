"""OpenAI's legacy text completions (``POST /v1/completions``), passed through.

Only OpenAI-format hosts serve this API (OpenAI's instruct and base models, Azure
deployments, vLLM, Together, Fireworks, OpenRouter, most self-hosted servers), and
they all speak it the same way, so nothing is translated: the client's body goes to
the target as it came, ``model`` replaced by the target's, and the answer (or each
stream event) comes back as the target sent it. What is read here is only what the
gateway itself needs: the request's shape (checked, so a bad one is a 400 before any
call), its worst-case size (for limits and budgets), whether it streams, and the
answer's usage and finish, for charging and for telling a whole stream from a cut one.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs
import orjson

from ._decoded import carried, carrying
from ._errors import InvalidRequest, SerializationError, StreamError
from ._openai_request import client_body, number_param
from ._openai_response import usage_from_wire
from ._passthrough import sse_bytes
from ._sse import SSEDecoder
from ._types import ChatChunk, ChunkChoice, Delta, UpstreamRequest, Usage

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "TextCompleter",
    "TextRequest",
    "TextResponse",
    "TextStreamDecoder",
    "text_body",
    "text_request_from_wire",
    "text_response_from_wire",
]

#: What OpenAI generates for a completion that sets no ``max_tokens``.
DEFAULT_MAX_TOKENS = 16

_PROMPT_SHAPES = "a string, an array of strings, an array of tokens or an array of token arrays"


@attrs.frozen
class TextRequest:
    """A client's ``/v1/completions`` request: its body as it came, and what the
    gateway reads of it.

    Attributes:
        model: The route or ``provider:model`` the client named.
        body: The client's whole JSON body (sent on with ``model`` replaced).
        stream: Whether it asked for SSE.
        include_usage: Whether it asked for the usage event of a stream.
        max_tokens: Its output limit per choice (OpenAI's default when unset).
        choices: Completions generated per prompt: ``best_of`` when set, else ``n``.
        prompts: Prompts in the request (an array of them is a batch).
        prompt_chars: Characters of text prompt; ``prompt_tokens``: tokens given as
            token arrays (both for estimates before the upstream says).
    """

    model: str
    body: dict[str, Any] = attrs.field(eq=False, repr=False)
    stream: bool = False
    include_usage: bool = False
    max_tokens: int = DEFAULT_MAX_TOKENS
    choices: int = 1
    prompts: int = 1
    prompt_chars: int = 0
    prompt_tokens: int = 0


@attrs.frozen
class TextResponse:
    """A whole answer: the upstream's JSON as it came, its model and usage."""

    model: str
    usage: Usage | None
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    def with_model(self, model: str) -> TextResponse:
        """The answer naming ``model`` where the upstream named none."""
        if self.model:
            return self
        return TextResponse(model, self.usage, {**self.raw, "model": model})


def text_request_from_wire(body: Any) -> TextRequest:
    """A client's parsed JSON body -> TextRequest.

    Raises:
        InvalidRequest: naming the offending parameter.
    """
    body, model = client_body(body)
    if "prompt" not in body or body["prompt"] is None:
        raise InvalidRequest("'prompt' is required", param="prompt")
    chars, tokens, prompts = _prompt_size(body["prompt"])
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    max_tokens = _count(body, "max_tokens", 0)
    n = _count(body, "n", 1)
    best_of = _count(body, "best_of", 1)
    if best_of is not None and n is not None and best_of < n:
        raise InvalidRequest("'best_of' must be greater than or equal to 'n'", param="best_of")
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        number_param(body, name)
    for name in ("suffix", "user"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidRequest(f"'{name}' must be a string", param=name)
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise InvalidRequest("'stop' must be a string or an array of strings", param="stop")
    return TextRequest(
        model,
        body,
        stream=bool(stream),
        include_usage=bool(stream and options and options.get("include_usage")),
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        choices=max(best_of or 1, n or 1),
        prompts=prompts,
        prompt_chars=chars,
        prompt_tokens=tokens,
    )


def _count(body: dict[str, Any], name: str, least: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidRequest(f"'{name}' must be an integer of at least {least}", param=name)
    return value


def _prompt_size(prompt: Any) -> tuple[int, int, int]:
    """``(characters of text, tokens given as integers, prompts)`` of a prompt.

    Raises:
        InvalidRequest: ``prompt`` is none of the four shapes OpenAI takes.
    """
    if isinstance(prompt, str):
        return len(prompt), 0, 1
    if isinstance(prompt, list) and prompt:
        if all(isinstance(p, str) for p in prompt):
            return sum(len(p) for p in prompt), 0, len(prompt)
        if all(_is_token(t) for t in prompt):
            return 0, len(prompt), 1
        if all(isinstance(p, list) and p and all(_is_token(t) for t in p) for p in prompt):
            return 0, sum(len(p) for p in prompt), len(prompt)
    raise InvalidRequest(f"'prompt' must be {_PROMPT_SHAPES}", param="prompt")


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def text_body(req: TextRequest, model: str | None, *, stream_usage: bool = False) -> dict[str, Any]:
    """The body sent to a target: the client's, ``model`` replaced (None: left out, as
    an Azure deployment in the URL chooses it). With ``stream_usage`` a stream asks for
    its usage event even when the client did not (the gateway charges from it; the
    client gets it only if it asked)."""
    body = dict(req.body)
    if model is None:
        body.pop("model", None)
    else:
        body["model"] = model
    if req.stream and stream_usage:
        options = body.get("stream_options")
        body["stream_options"] = {**(options or {}), "include_usage": True}
    return body


def text_response_from_wire(raw: Any) -> TextResponse:
    """An upstream's parsed 2xx answer. Raises SerializationError."""
    if not isinstance(raw, dict) or not isinstance(raw.get("choices"), list):
        raise SerializationError("not a text completion: no 'choices' array")
    return TextResponse(str(raw.get("model") or ""), _usage(raw.get("usage")), raw)


def _usage(raw: Any) -> Usage | None:
    try:
        return usage_from_wire(raw)
    except (TypeError, ValueError):
        return None  # a host's odd usage: charged from the estimate instead


class TextStreamDecoder:
    """SSE ``data:`` events of ``text_completion`` JSON, ended by ``[DONE]``; each one a
    ChatChunk carrying the event's bytes (``raw``) for the client, its text as content
    (for the first-token commit and the count of what was streamed) and its usage.

    A stream is complete when ``[DONE]`` arrived, or when the body ended cleanly after a
    choice had a ``finish_reason``; else :meth:`close` raises StreamError. An in-band
    ``{"error": ...}`` event raises StreamError at once.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._done = False
        self._finished = False

    @property
    def buffered(self) -> int:
        return self._sse.buffered

    def feed(self, data: bytes) -> list[ChatChunk]:
        return self._chunks(self._sse.feed(data))

    def close(self) -> list[ChatChunk]:
        chunks = self._chunks(self._sse.close())
        if not (self._done or self._finished):
            incomplete = "upstream stream ended before the answer was complete"
            raise carried(StreamError(incomplete), chunks)
        return chunks

    def _chunks(self, events: list[Any]) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        with carrying(out):
            for event in events:
                if self._done:
                    continue  # nothing after [DONE] is part of the answer
                if event.data == "[DONE]":
                    self._done = True
                    continue
                out.append(self._chunk(event.data))
        return out

    def _chunk(self, data: str) -> ChatChunk:
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StreamError(f"upstream sent a malformed stream event: {exc}") from exc
        if not isinstance(raw, dict):
            raise StreamError("upstream sent a stream event that is not a JSON object")
        error = raw.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else error
            raise StreamError(f"upstream stream error: {message or 'no message'}")
        choices = []
        for choice in raw.get("choices") or ():
            if not isinstance(choice, dict):
                raise StreamError("upstream sent a stream choice that is not an object")
            text = choice.get("text")
            finish = choice.get("finish_reason")
            if finish:
                self._finished = True
            index = choice.get("index")
            choices.append(
                ChunkChoice(
                    index if isinstance(index, int) else 0,
                    Delta(content=text if isinstance(text, str) else None),
                    str(finish) if finish else None,
                )
            )
        created = raw.get("created")
        return ChatChunk(
            id=str(raw.get("id") or ""),
            model=str(raw.get("model") or ""),
            created=created if isinstance(created, int) else 0,
            choices=tuple(choices),
            usage=_usage(raw.get("usage")),
            raw=sse_bytes(data),
        )


@runtime_checkable
class TextCompleter(Protocol):
    """An adapter whose provider serves ``/v1/completions`` (the OpenAI family)."""

    def text_completion_request(self, req: TextRequest, model: str) -> UpstreamRequest:
        """The upstream request for ``req`` on ``model``. Raises UnsupportedCapability
        where this host (or model) has no text completions."""
        ...
