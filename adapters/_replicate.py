"""The ``replicate`` adapter: Replicate's predictions API, as a job (``adapters._jobs``).

* Create: ``POST {base_url}/models/{owner}/{name}/predictions`` (an official model),
  or ``POST {base_url}/predictions`` with ``"version"`` for a target
  ``owner/name:version``; ``Authorization: Bearer``; the body is ``{"input": {...},
  "stream": bool}``. Language models take ``prompt`` and ``system_prompt``,
  ``max_tokens`` (older ones ``max_new_tokens``: the provider's ``max_tokens_input``),
  ``temperature``, ``top_p``, ``stop_sequences`` (one comma-separated string), ``seed``.
* A non-streamed create sends ``Prefer: wait=N``: Replicate holds the request open up
  to N (at most 60) seconds and answers the prediction, finished or not; one still
  ``starting`` or ``processing`` is polled at ``urls.get`` until ``succeeded``,
  ``failed`` or ``canceled``. ``output`` is a list of string pieces (joined) or a
  string; ``metrics`` has ``input_token_count`` and ``output_token_count``.
* A streamed create answers at once with ``urls.stream``: an SSE stream (``Accept:
  text/event-stream``, ``Cache-Control: no-store``) of ``output`` events (the data is
  the text, multi-line data joined with newlines), ``error`` events and one ``done``
  event (``{}``, or ``{"reason": "canceled"}``...). It carries no usage: the
  prediction is read once more at its end for the token counts.
* ``POST urls.cancel`` stops a prediction the router no longer waits for; with
  ``cancel_after``, the create also sends ``Cancel-After`` (a deadline Replicate
  enforces itself, for the one window where the router has no id to cancel: a create
  held open by ``Prefer: wait``).
* Errors are RFC 7807 problem details, ``{"title", "detail", "status"}``; 429 comes with
  ``Retry-After``; 402 is the account's credit (the operator's problem).

The URLs a prediction names are followed only within Replicate's own domain (the base
URL's host, or a host under its parent domain: ``stream.replicate.com``), so an answer
can never send the token elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from ._base import (
    AdapterBase,
    Capabilities,
    Headers,
    error_for_status,
    error_object,
    path_segment,
    request_headers,
    upstream_json,
)
from ._errors import (
    GatewayError,
    InvalidRequest,
    ProviderInternalError,
    SerializationError,
    StreamError,
)
from ._jobs import Job, JobState
from ._prompt import render, split_system, text_of
from ._textgen import TextEventDecoder, finish_chunk, text_chunk, text_response
from ._types import ChatChunk, GatewayRequest, UpstreamRequest, Usage

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._sse import SSEEvent

__all__ = ["ReplicateAdapter", "ReplicateStreamDecoder", "make_adapter"]

_STATES: dict[str, JobState] = {
    "starting": "running",
    "processing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
    "aborted": "canceled",
}


def _usage(metrics: Any) -> Usage | None:
    if not isinstance(metrics, dict) or "output_token_count" not in metrics:
        return None
    return Usage(
        int(metrics.get("input_token_count") or 0), int(metrics.get("output_token_count") or 0)
    )


def _output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list) and all(isinstance(piece, str) for piece in output):
        return "".join(output)
    raise SerializationError("Replicate's prediction output is not text (a list of strings)")


class ReplicateAdapter(AdapterBase):
    """Creates, polls, streams and cancels Replicate predictions.

    Args:
        base_url: ``https://api.replicate.com/v1``.
        api_key: The API token, sent as ``Authorization: Bearer``.
        wait: Seconds for ``Prefer: wait`` on a non-streamed create (1 to 60).
        poll_interval: Seconds between polls of a running prediction.
        max_tokens_input: The input that limits output tokens.
    """

    polled_stream = False

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "replicate",
        wait: float = 60.0,
        poll_interval: float = 0.5,
        max_tokens_input: str = "max_tokens",
        cancel_after: float | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.poll_interval = poll_interval
        self._wait = max(1, min(60, round(wait)))
        self._max_tokens_input = max_tokens_input
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers, self._stream_headers = request_headers(auth, headers)
        deadline = (("cancel-after", f"{max(1, round(cancel_after))}s"),) if cancel_after else ()
        self._create_headers = (*self._headers, *deadline)
        self._get_headers = tuple((k, v) for k, v in self._headers if k != "content-type")
        self._sse_headers = (
            *((k, v) for k, v in self._stream_headers if k != "content-type"),
            ("cache-control", "no-store"),
        )
        base = urlsplit(self.base_url)
        host = base.hostname or ""
        self._scheme = base.scheme
        self._hosts = (base.netloc, host)
        # A host under the base host's parent domain (api.replicate.com -> replicate.com).
        parent = host.split(".", 1)[1] if host.count(".") >= 2 else ""
        self._parent = "." + parent if parent and not host.replace(".", "").isdigit() else ""

    def __repr__(self) -> str:  # never the key
        return f"ReplicateAdapter(name={self.name!r}, base_url={self.base_url!r})"

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(vision=False, tools=False, prefill=False)

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        """The create request. Raises UnsupportedCapability (images, tools) or
        InvalidRequest (a model that is not ``owner/name[:version]``)."""
        ref, _, version = model.partition(":")
        owner, _, name = ref.partition("/")
        if not owner or not name or "/" in name:
            raise InvalidRequest(
                f'a Replicate model is "owner/name" or "owner/name:version", not {model!r}'
            )
        body: dict[str, Any] = {"input": self._input(req), "stream": req.stream}
        if version:
            body["version"] = version
            url = f"{self.base_url}/predictions"
        else:
            url = f"{self.base_url}/models/{path_segment(owner)}/{path_segment(name)}/predictions"
        headers = self._create_headers
        if not req.stream:
            headers = (*headers, ("prefer", f"wait={self._wait}"))
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    def _input(self, req: GatewayRequest) -> dict[str, Any]:
        system, rest = split_system(req.messages, "replicate")
        if len(rest) == 1 and rest[0].role == "user":
            prompt = text_of(rest[0], "replicate")
        else:  # a conversation: one transcript, the model's template around it
            prompt = render(tuple(rest), "plain", "replicate")
        values: dict[str, Any] = {"prompt": prompt}
        if system:
            values["system_prompt"] = system
        if req.max_tokens is not None:
            values[self._max_tokens_input] = req.max_tokens
        if req.temperature is not None:
            values["temperature"] = req.temperature
        if req.top_p is not None:
            values["top_p"] = req.top_p
        if req.stop:
            values["stop_sequences"] = ",".join(req.stop)
        if isinstance(req.extra.get("seed"), int):
            values["seed"] = req.extra["seed"]
        return values

    def _followed(self, url: Any, what: str) -> str | None:
        """``url`` if it may be sent the token (see the module's doc), None if absent."""
        if url is None:
            return None
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        if parts.scheme == self._scheme and (
            parts.netloc in self._hosts or (self._parent and host.endswith(self._parent))
        ):
            return str(url)
        raise SerializationError(f"Replicate's prediction names a {what} URL outside its domain")

    def parse_job(
        self, req: GatewayRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> Job:
        raw = upstream_json(body)
        if not isinstance(raw, dict) or raw.get("status") not in _STATES:
            raise SerializationError("not a Replicate prediction: no known 'status'")
        urls = raw.get("urls")
        urls = urls if isinstance(urls, dict) else {}
        get = self._followed(urls.get("get"), "get")
        cancel = self._followed(urls.get("cancel"), "cancel")
        stream = self._followed(urls.get("stream"), "stream")
        state = _STATES[raw["status"]]
        job = Job(
            id=str(raw.get("id") or ""),
            state=state,
            poll=UpstreamRequest("GET", get, self._get_headers, b"") if get else None,
            stream=UpstreamRequest("GET", stream, self._sse_headers, b"") if stream else None,
            cancel=UpstreamRequest("POST", cancel, self._get_headers, b"") if cancel else None,
        )
        if state == "succeeded":
            try:
                usage = _usage(raw.get("metrics"))
            except (TypeError, ValueError) as exc:
                raise SerializationError(f"Replicate sent malformed metrics: {exc!r}") from exc
            limit = req.max_tokens
            finish = "length" if limit and usage and usage.completion_tokens >= limit else "stop"
            answer = text_response(_output_text(raw.get("output")), finish, usage)
            return Job(job.id, state, job.poll, job.stream, None, answer=answer)
        if state == "failed":
            message = f"the Replicate prediction failed: {raw.get('error') or 'no reason given'}"
            return Job(job.id, state, error=ProviderInternalError(message))
        if state == "canceled":
            return Job(job.id, state, error=ProviderInternalError("the prediction was canceled"))
        return job

    def job_stream_decoder(
        self, req: GatewayRequest, model: str, job: Job
    ) -> ReplicateStreamDecoder:
        return ReplicateStreamDecoder()

    def parse_response(self, status: int, headers: Headers, body: bytes) -> Any:
        raise SerializationError("a Replicate answer is a prediction (read through parse_job)")

    def stream_decoder(self) -> ReplicateStreamDecoder:
        return ReplicateStreamDecoder()

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        raw = error_object(body)
        message = str(raw.get("detail") or raw.get("title") or f"upstream answered HTTP {status}")
        if status == 402:  # out of credit: the operator's account, not the request
            return ProviderInternalError(
                f"the upstream refused for billing reasons (HTTP 402): {message}",
                upstream_status=status,
            )
        return error_for_status(status, message, headers=headers)

    def probe_request(self) -> UpstreamRequest:
        """``GET {base_url}/account``: authenticated, costs nothing."""
        return UpstreamRequest("GET", f"{self.base_url}/account", self._get_headers, b"")


class ReplicateStreamDecoder(TextEventDecoder):
    """A prediction's SSE stream -> chunks; complete at its ``done`` event."""

    INCOMPLETE = "Replicate's stream ended before its done event"

    def _event(self, event: SSEEvent, out: list[ChatChunk]) -> None:
        if event.event in ("output", "done"):
            self._start(out)
        if event.event == "output" and event.data:
            out.append(text_chunk(event.data))
        elif event.event == "error":
            detail = error_object(event.data).get("detail") or event.data
            raise StreamError(f"Replicate reported an error mid-stream: {detail}")
        elif event.event == "done":
            reason = error_object(event.data).get("reason") if event.data else None
            if reason:  # "canceled", "error": the answer is not whole
                raise StreamError(f"Replicate's stream ended early ({reason})")
            self._done = True
            out.append(finish_chunk("stop"))


def make_adapter(name: str, settings: Mapping[str, Any]) -> ReplicateAdapter:
    """The registry's factory: ``settings`` are :class:`ReplicateProvider`'s fields."""
    return ReplicateAdapter(
        base_url=settings["base_url"],
        api_key=settings.get("api_key"),
        headers=dict(settings.get("headers") or {}),
        name=name,
        wait=float(settings.get("wait") or 60.0),
        poll_interval=float(settings.get("poll_interval") or 0.5),
        max_tokens_input=str(settings.get("max_tokens_input") or "max_tokens"),
        cancel_after=settings.get("cancel_after"),
    )
