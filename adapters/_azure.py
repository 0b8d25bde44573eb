"""The ``azure`` adapter: Azure OpenAI's deployment-scoped Chat Completions.

The wire format is OpenAI's (the codec and the SSE stream decoder are reused), with
Azure's differences handled here:

* the URL names a deployment and needs ``api-version``; the body's ``model`` is not sent
  (the deployment chooses the model);
* auth is an ``api-key`` header, or ``Authorization: Bearer`` with an Entra ID token;
* answers carry ``prompt_filter_results`` / ``content_filter_results`` (ignored), and a
  filtered answer ends with ``finish_reason: "content_filter"`` (passed on);
* a stream usually starts with a filter-only chunk (``choices: []``, ``id: ""``, no
  usage): it is not content and not the usage chunk, so it is skipped;
* a filtered prompt is a 400 ``content_filter`` with an ``innererror`` naming the
  categories: :class:`ContentFiltered` with that reason.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs
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
    with_upstream_detail,
)
from ._decoded import carried_through
from ._embeddings import MAX_INPUTS
from ._errors import ContentFiltered, GatewayError
from ._openai import OpenAIStreamDecoder, openai_embedding_body
from ._openai_embeddings import embedding_response_from_wire
from ._openai_request import for_reasoning_model, request_to_wire
from ._openai_response import response_from_wire
from ._passthrough import OPENAI, body_for, passes_through
from ._text_completions import TextRequest, text_body
from ._types import (
    ChatChunk,
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayRequest,
    GatewayResponse,
    UpstreamRequest,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["AzureAdapter", "AzureStreamDecoder", "make_adapter"]

# "Please retry after 7 seconds", "Try again in 7 seconds": the throttling message says
# how long even when a proxy stripped the headers.
_RETRY_IN_TEXT = re.compile(r"(?:retry after|try again in)\s+(\d+(?:\.\d+)?)\s*second", re.I)


class AzureAdapter(AdapterBase):
    """Builds ``POST {base_url}/openai/deployments/{deployment}/chat/completions``.

    Args:
        base_url: The resource endpoint, ``https://{resource}.openai.azure.com``.
        api_version: The ``api-version`` query parameter Azure requires.
        deployment: The deployment to call; None: the target's model names it.
        api_key: Sent as ``api-key``.
        ad_token: An Entra ID token, sent as ``Authorization: Bearer`` when no key.
        headers: Extra headers for every request (they override ours).
        name: The provider's name in the config.
    """

    fields = OPENAI  # its column of the field tables (._fields)
    same_format = OPENAI  # an OpenAI Chat client's body passes through

    def __init__(
        self,
        base_url: str,
        api_version: str,
        deployment: str | None = None,
        api_key: str | None = None,
        ad_token: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "azure",
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.deployment = deployment
        auth = (
            {"api-key": api_key}
            if api_key
            else {"authorization": f"Bearer {ad_token}"}
            if ad_token
            else {}
        )
        self._headers, self._stream_headers = request_headers(auth, headers)

    def __repr__(self) -> str:  # never the key or token
        return (
            f"AzureAdapter(name={self.name!r}, base_url={self.base_url!r}, "
            f"deployment={self.deployment!r}, api_version={self.api_version!r})"
        )

    def _query(self) -> str:
        return urlencode({"api-version": self.api_version})

    def url(self, model: str, operation: str = "chat/completions") -> str:
        deployment = path_segment(self.deployment or model)
        return f"{self.base_url}/openai/deployments/{deployment}/{operation}?{self._query()}"

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        # An OpenAI Chat client's body passes through as it came; others are translated.
        body = body_for(req, model) if passes_through(req, OPENAI) else request_to_wire(req, model)
        # Azure serves OpenAI's models: a reasoning one (by its deployment's name, as
        # deployments are usually named) takes only max_completion_tokens.
        body = for_reasoning_model(body, self.deployment or model)
        del body["model"]  # the deployment in the URL chooses the model
        headers = self._stream_headers if req.stream else self._headers
        return UpstreamRequest("POST", self.url(model), headers, orjson.dumps(body))

    def parse_response(self, status: int, headers: Headers, body: bytes) -> GatewayResponse:
        raw = upstream_json(body)
        return response_from_wire(raw)

    def response_for(
        self, req: GatewayRequest, status: int, headers: Headers, body: bytes
    ) -> GatewayResponse:
        raw = upstream_json(body)
        answer = response_from_wire(raw)
        # An OpenAI Chat client gets Azure's answer as it came (filter results too).
        return attrs.evolve(answer, raw=raw) if passes_through(req, OPENAI) else answer

    def stream_decoder_for(self, req: GatewayRequest) -> AzureStreamDecoder:
        return AzureStreamDecoder(passthrough=passes_through(req, OPENAI))

    def embedding_batch(self, model: str) -> int:
        return MAX_INPUTS

    def build_embedding_request(self, req: EmbeddingRequest, model: str) -> UpstreamRequest:
        """``POST .../deployments/{deployment}/embeddings``: OpenAI's body, no model."""
        body = openai_embedding_body(req, model)
        del body["model"]  # the deployment in the URL chooses the model
        return UpstreamRequest(
            "POST", self.url(model, "embeddings"), self._headers, orjson.dumps(body)
        )

    def parse_embedding_response(
        self, req: EmbeddingRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> EmbeddingResponse:
        return embedding_response_from_wire(upstream_json(body), len(req.inputs))

    def text_completion_request(self, req: TextRequest, model: str) -> UpstreamRequest:
        """``POST .../deployments/{deployment}/completions``: the client's body, no
        model (the deployment chooses it)."""
        body = orjson.dumps(text_body(req, None))
        headers = self._stream_headers if req.stream else self._headers
        return UpstreamRequest("POST", self.url(model, "completions"), headers, body)

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        error = _error_object(body)
        message = str(error.get("message") or f"upstream answered HTTP {status}")
        code = str(error.get("code") or "")
        inner = error.get("innererror")
        inner_code = str(inner.get("code") or "") if isinstance(inner, dict) else ""
        if code == "content_filter" or inner_code == "ResponsibleAIPolicyViolation":
            categories = _filtered_categories(inner)
            reason = f" (filtered: {', '.join(categories)})" if categories else ""
            return ContentFiltered(
                f"Azure content filter: {message}{reason}",
                upstream_status=status,
                param=error.get("param") if isinstance(error.get("param"), str) else None,
            )
        err = error_for_status(status, message, code=code or None, headers=headers)
        err = with_upstream_detail(err, error.get("param"), error.get("code"))
        if status == 429 and err.retry_after is None:
            found = _RETRY_IN_TEXT.search(message)
            if found:
                err.retry_after = float(found.group(1))
        return err

    def capabilities(self, model: str) -> Capabilities:
        # OpenAI's models answer a trailing assistant message anew, never continue it.
        return Capabilities(prefill=False)

    def stream_decoder(self) -> AzureStreamDecoder:
        return AzureStreamDecoder()

    def probe_request(self) -> UpstreamRequest:
        """``GET {base_url}/openai/models?api-version=...``: the resource's model list."""
        headers = tuple((k, v) for k, v in self._headers if k != "content-type")
        return UpstreamRequest(
            "GET", f"{self.base_url}/openai/models?{self._query()}", headers, b""
        )


class AzureStreamDecoder(OpenAIStreamDecoder):
    """OpenAI's decoder, minus Azure's filter-only chunks.

    Azure's leading ``prompt_filter_results`` chunk (no choices, no usage, ``id: ""``)
    and the asynchronous filter's annotation chunks (a choice with filter results but
    an empty delta and no finish) carry nothing for the client; passing them on would
    also break "every chunk has the same id".
    """

    def _chunks(self, events: list[Any]) -> list[ChatChunk]:
        with carried_through(_kept):
            return _kept(super()._chunks(events))


def _kept(chunks: list[ChatChunk]) -> list[ChatChunk]:
    return [c for c in chunks if _carries_something(c)]


def _carries_something(chunk: ChatChunk) -> bool:
    return (
        chunk.usage is not None
        or chunk.has_content
        or any(c.delta.role is not None for c in chunk.choices)
    )


def _error_object(body: bytes) -> dict[str, Any]:
    error = error_object(body).get("error")
    return dict(error) if isinstance(error, dict) else {}


def _filtered_categories(inner: Any) -> list[str]:
    """The names of the filter categories that fired, in Azure's order."""
    if not isinstance(inner, dict):
        return []
    result = inner.get("content_filter_result")
    if not isinstance(result, dict):
        return []
    return [
        name
        for name, verdict in result.items()
        if isinstance(verdict, dict) and verdict.get("filtered")
    ]


def make_adapter(name: str, settings: Mapping[str, Any]) -> AzureAdapter:
    """The registry's factory: ``settings`` are :class:`AzureProvider`'s fields."""
    return AzureAdapter(
        base_url=settings["base_url"],
        api_version=settings.get("api_version") or "2024-10-21",
        deployment=settings.get("deployment"),
        api_key=settings.get("api_key"),
        ad_token=settings.get("ad_token"),
        headers=dict(settings.get("headers") or {}),
        name=name,
    )
