"""Text-generation-inference's native API: ``POST /generate`` and ``/generate_stream``.

(A TGI server's ``/v1/chat/completions`` Messages API, and Hugging Face's router, are
OpenAI's format: ``kind = "huggingface"`` with ``api = "openai"``.)

* The request is ``{"inputs": prompt, "parameters": {...}}``: the conversation is
  rendered with the provider's ``template`` (``adapters._prompt``); the limit is
  ``max_new_tokens``, stops are ``stop``; TGI refuses ``temperature`` 0 and ``top_p``
  1, so greedy decoding is ``do_sample: false`` and a ``top_p`` of 1 is left out.
* ``/generate`` answers ``{"generated_text", "details": {"finish_reason",
  "generated_tokens"}}`` (``length``, ``eos_token``, ``stop_sequence``); some
  deployments wrap it in a one-element list.
* ``/generate_stream`` sends SSE ``data:`` events ``{"token": {"text", "special"},
  "generated_text": null, "details": null}``; the last one carries ``generated_text``
  and ``details`` (with ``input_length`` on current servers): that is the answer's end,
  there is no ``[DONE]``. A failure mid-stream is ``{"error", "error_type"}``.
* Errors are ``{"error", "error_type"}``: 422 validation (a prompt too long says
  ``must be <=``), 424 generation, 429 overloaded, 500 incomplete generation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._base import (
    AdapterBase,
    Capabilities,
    Headers,
    error_for_status,
    error_object,
    request_headers,
    stream_event_object,
    upstream_json,
)
from ._errors import (
    ContextLengthExceeded,
    GatewayError,
    Overloaded,
    ProviderInternalError,
    SerializationError,
    StreamError,
)
from ._prompt import Template, render
from ._textgen import (
    TextEventDecoder,
    finish_chunk,
    text_chunk,
    text_response,
    usage_chunk,
)
from ._types import ChatChunk, GatewayRequest, GatewayResponse, UpstreamRequest, Usage

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._sse import SSEEvent

__all__ = ["TGIAdapter", "TGIStreamDecoder"]

_FINISH = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


def finish_reason(details: Any) -> str:
    reason = details.get("finish_reason") if isinstance(details, dict) else None
    return _FINISH.get(str(reason), "stop")


def usage_from_details(details: Any) -> Usage | None:
    if not isinstance(details, dict) or "generated_tokens" not in details:
        return None
    prompt = details.get("input_length")
    if prompt is None and isinstance(details.get("prefill"), list):
        prompt = len(details["prefill"])
    return Usage(int(prompt or 0), int(details["generated_tokens"] or 0))


def tgi_error(status: int, body: bytes | str, headers: Headers = ()) -> GatewayError:
    """A TGI ``{"error", "error_type"}`` answer in the taxonomy."""
    raw = error_object(body)
    message = str(raw.get("error") or f"upstream answered HTTP {status}")
    kind = str(raw.get("error_type") or "")
    if status == 422 and "must be <=" in message:
        return ContextLengthExceeded(message, upstream_status=status)
    if status == 424 or kind in ("generation", "incomplete_generation"):
        return ProviderInternalError(message, upstream_status=status)
    if status == 429 and kind == "overloaded":
        return Overloaded(message, upstream_status=status, retry_after=None)
    return error_for_status(status, message, code=kind or None, headers=headers)


class TGIAdapter(AdapterBase):
    """Builds ``POST {base_url}/generate`` (or ``/generate_stream``).

    Args:
        base_url: The server's root, ``http://host:8080``.
        api_key: Sent as ``Authorization: Bearer`` (a Hugging Face token for
            Inference Endpoints); None for a local server.
        template: How the conversation becomes the prompt.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "huggingface",
        template: Template = "chatml",
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.template = template
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers, self._stream_headers = request_headers(auth, headers)

    def __repr__(self) -> str:  # never the key
        return f"TGIAdapter(name={self.name!r}, base_url={self.base_url!r})"

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(vision=False, tools=False, prefill=True)

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        """Raises UnsupportedCapability for images or tool calls."""
        parameters: dict[str, Any] = {"details": True, "return_full_text": False}
        if req.max_tokens is not None:
            parameters["max_new_tokens"] = req.max_tokens
        if req.temperature is not None:
            if req.temperature > 0:
                parameters["temperature"] = req.temperature
            else:
                parameters["do_sample"] = False
        if req.top_p is not None and 0 < req.top_p < 1:
            parameters["top_p"] = req.top_p
        if req.stop:
            parameters["stop"] = list(req.stop)
        if isinstance(req.extra.get("seed"), int):
            parameters["seed"] = req.extra["seed"]
        body = {"inputs": render(req.messages, self.template, "tgi"), "parameters": parameters}
        path, headers = (
            ("/generate_stream", self._stream_headers)
            if req.stream
            else (
                "/generate",
                self._headers,
            )
        )
        return UpstreamRequest("POST", self.base_url + path, headers, orjson.dumps(body))

    def parse_response(self, status: int, headers: Headers, body: bytes) -> GatewayResponse:
        raw = upstream_json(body)
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if not isinstance(raw, dict) or not isinstance(raw.get("generated_text"), str):
            raise SerializationError("not a TGI generate response: no 'generated_text'")
        details = raw.get("details")
        try:
            usage = usage_from_details(details)
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"TGI sent malformed details: {exc!r}") from exc
        return text_response(raw["generated_text"], finish_reason(details), usage)

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        return tgi_error(status, body, headers)

    def stream_decoder(self) -> TGIStreamDecoder:
        return TGIStreamDecoder()

    def probe_request(self) -> UpstreamRequest:
        """``GET {base_url}/health``: 200 once the model is loaded."""
        headers = tuple((k, v) for k, v in self._headers if k != "content-type")
        return UpstreamRequest("GET", f"{self.base_url}/health", headers, b"")


class TGIStreamDecoder(TextEventDecoder):
    """``/generate_stream`` SSE events -> chunks; complete at the event with details."""

    INCOMPLETE = "TGI's stream ended before its last event (with details)"

    def _event(self, event: SSEEvent, out: list[ChatChunk]) -> None:
        if not event.data.strip():
            return
        raw = stream_event_object(event.data)
        if raw.get("error"):
            raise StreamError(f"TGI reported an error mid-stream: {raw['error']}")
        self._start(out)
        token = raw.get("token")
        if isinstance(token, dict) and token.get("text") and not token.get("special"):
            out.append(text_chunk(str(token["text"])))
        details = raw.get("details")
        if details is not None:
            self._done = True
            out.append(finish_chunk(finish_reason(details)))
            try:
                usage = usage_from_details(details)
            except (TypeError, ValueError) as exc:
                raise StreamError(f"TGI sent malformed details: {exc!r}") from exc
            if usage is not None:
                out.append(usage_chunk(usage))
