"""Upstreams: one per configured provider, answering in unified types.

:class:`HTTPUpstream` joins a pure adapter to a transport; :class:`SimulatedUpstream`
plays the built-in simulated provider's plans with trio's clock (so tests of timing run
on MockClock). The engine sees only the :class:`Upstream` interface.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from adapters import (
    AuthenticationFailed,
    Capabilities,
    GatewayError,
    SerializationError,
    StreamError,
    TextStreamDecoder,
    TokenCounter,
    UnsupportedCapability,
    UpstreamRequest,
    refuse_untaken,
    response_for,
    stream_decoder_for,
    take_decoded,
)

from ._embed import embed_over_http
from ._images import ImageFetcher, inline_images, wants_fetch
from ._redact import Redactor
from ._simulated import SimulatedUpstream
from ._text import complete_text, text_request
from ._transport import HttpxTransport, Transport, UpstreamResponse

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from adapters import (
        ChatChunk,
        EmbeddingRequest,
        EmbeddingResponse,
        GatewayRequest,
        GatewayResponse,
        HTTPAdapter,
        StreamDecoder,
        TextRequest,
        TextResponse,
    )

__all__ = ["HTTPUpstream", "SimulatedUpstream", "Upstream"]

#: ``server.max_response``'s default: the largest answer body, stream event or line.
MAX_RESPONSE = 32 * 1024 * 1024

# Key-shaped tokens in upstream messages ("Incorrect API key provided: sk-proj-****abcd").
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|key)-[A-Za-z0-9_*.-]{4,}")


class Upstream(Protocol):
    name: str
    kind: str

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        """One non-streamed attempt. Raises GatewayError."""
        ...

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        """One embeddings attempt: a vector per input. Raises GatewayError
        (UnsupportedCapability for a kind or model without embeddings)."""
        ...

    def stream(
        self, req: GatewayRequest, model: str
    ) -> AbstractAsyncContextManager[AsyncIterator[list[ChatChunk]]]:
        """One streamed attempt; its chunks are readable while the context is open.

        Chunks come in batches, as they arrived together, so that the client gets them
        in one write. Raises GatewayError on entry (the upstream refused) or while
        iterating.
        """
        ...

    async def probe(self) -> None:
        """A cheap health probe. Raises GatewayError when the upstream is unwell."""
        ...

    def capabilities(self, model: str) -> Capabilities:
        """What ``model`` here can take (routing skips a target that lacks it)."""
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The upstream's background work while it is open (an HTTP/2 connection's
        reader and writer); returns once it is closed, or at once when it has none."""
        ...

    async def aclose(self) -> None: ...


@attrs.frozen
class CapabilityOverrides:
    """The operator's word on capabilities: for the provider, then per model (None: the
    adapter's default)."""

    provider: Mapping[str, bool | None] = attrs.field(factory=dict)
    models: Mapping[str, Mapping[str, bool | None]] = attrs.field(factory=dict)

    def apply(self, model: str, default: Capabilities) -> Capabilities:
        values = attrs.asdict(default)
        for overrides in (self.provider, self.models.get(model, {})):
            values.update({k: v for k, v in overrides.items() if v is not None})
        return Capabilities(**values)


class HTTPUpstream:
    """A provider over HTTP: its adapter, its transport, and the secrets to keep out of
    every error message (upstreams echo keys back, OpenAI masked but in part; any piece
    of 8+ characters of a key is redacted, :class:`Redactor`). Errors of the transport
    are scrubbed as well: they may quote the request's headers."""

    def __init__(
        self,
        name: str,
        kind: str,
        adapter: HTTPAdapter,
        transport: Transport,
        secrets: tuple[str, ...] = (),
        *,
        capabilities: CapabilityOverrides | None = None,
        images: ImageFetcher | None = None,
        max_response: int = MAX_RESPONSE,
        side_transport: HttpxTransport | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.adapter = adapter
        self.transport = transport
        self._redact = Redactor(secrets)
        self._capabilities = capabilities or CapabilityOverrides()
        #: Fetches clients' image URLs for an adapter that needs bytes (None: refused).
        self._images = images
        self._max_response = max_response
        #: httpx2 for health probes, with the provider's TLS and proxy (made lazily
        #: when not given).
        self._side_transport = side_transport
        #: Given each answer's headers (rate-limit windows read them).
        self.on_headers: Callable[[Sequence[tuple[str, str]]], None] | None = None

    def capabilities(self, model: str) -> Capabilities:
        return self._capabilities.apply(model, self.adapter.capabilities(model))

    @property
    def _side(self) -> HttpxTransport:
        """httpx2, off the data path: health probes."""
        if self._side_transport is None:
            self._side_transport = HttpxTransport(max_connections=4)
        return self._side_transport

    async def _prepare(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        """The signed upstream request for ``req``, images fetched if allowed and needed.
        UnsupportedParameter for a part or a field the kind cannot take (``document``)."""
        refuse_untaken(req, self.adapter, self.name)
        if self._images is not None and not self.adapter.image_urls and wants_fetch(req):
            req = attrs.evolve(await inline_images(req, self._images), raw=None)
        return await self.signed(self.adapter.build_request(req, model))

    async def signed(self, request: UpstreamRequest) -> UpstreamRequest:
        """``request`` ready to send now (SigV4 for Bedrock)."""
        if getattr(self.adapter, "sign_may_block", False):
            # botocore refreshes expiring role credentials over the network, blocking.
            return await trio.to_thread.run_sync(
                self.adapter.sign, request, datetime.now(UTC), limiter=_SIGNERS
            )
        return self.adapter.sign(request, datetime.now(UTC))

    async def send_whole(self, request: UpstreamRequest) -> tuple[UpstreamResponse, bytes]:
        """Send a signed ``request`` and read its 2xx answer whole.

        Raises:
            GatewayError: the transport's failure, or the upstream's error answer
                (either scrubbed of credentials).
        """
        try:
            async with self.transport.request(request) as response:
                if self.on_headers is not None:
                    self.on_headers(response.headers)
                body = await self._read(response)
        except GatewayError as exc:  # the transport's, whose text may quote a header
            raise self._scrubbed(exc) from None
        if not 200 <= response.status < 300:
            raise self._failure(response, body)
        return response, body

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        if req.stream:
            req = attrs.evolve(req, stream=False, include_usage=False)
        response, body = await self.send_whole(await self._prepare(req, model))
        answer = response_for(self.adapter, req, response.status, response.headers, body)
        # Some providers (Bedrock) do not name the model that answered: it is ours.
        return answer if answer.model else attrs.evolve(answer, model=model)

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        return await embed_over_http(self, req, model)

    async def _read(self, response: UpstreamResponse) -> bytes:
        """The whole body, at most ``max_response`` bytes.

        Raises:
            SerializationError: the body is larger (left unread: its connection closes).
        """
        limit = self._max_response
        declared = next((v for k, v in response.headers if k.lower() == "content-length"), "")
        if declared.isdigit():
            if int(declared) > limit:
                raise _too_large(response.status, limit)
            return await response.aread()  # HTTP/1.1 framing holds it to the length
        pieces: list[bytes] = []
        size = 0
        async with aclosing(response.aiter_bytes()) as body:
            async for data in body:
                size += len(data)
                if size > limit:
                    raise _too_large(response.status, limit)
                pieces.append(data)
        return b"".join(pieces)

    def _failure(self, response: UpstreamResponse, body: bytes) -> GatewayError:
        """The error an upstream's non-2xx answer stands for."""
        if 300 <= response.status < 400:
            # Not the client's fault (it would be a 400): the provider's base_url or
            # proxy is wrong, and another target may well answer.
            return SerializationError(
                f"upstream answered HTTP {response.status}, a redirect (not followed): "
                "is the provider's base_url right?",
                upstream_status=response.status,
            )
        return self._scrubbed(self.adapter.parse_error(response.status, response.headers, body))

    def _scrubbed(self, err: GatewayError) -> GatewayError:
        """``err`` with no credential in its message."""
        if isinstance(err, AuthenticationFailed):
            err.message = (
                f"the upstream refused the configured credentials (HTTP {err.upstream_status})"
            )
        err.message = _KEY_LIKE.sub("[redacted]", self._redact(err.message))
        err.args = (err.message,)
        return err

    def stream(
        self, req: GatewayRequest, model: str
    ) -> AbstractAsyncContextManager[AsyncIterator[list[ChatChunk]]]:
        decoder = stream_decoder_for(self.adapter, req)
        return self.stream_request(partial(self._prepare, req, model), decoder, model)

    def stream_text(
        self, req: TextRequest, model: str
    ) -> AbstractAsyncContextManager[AsyncIterator[list[ChatChunk]]]:
        """A ``/v1/completions`` stream, its events as they came (see TextStreamDecoder)."""
        request = text_request(self, req, model)  # UnsupportedCapability: at once
        return self.stream_request(partial(self.signed, request), TextStreamDecoder(), model)

    async def complete_text(self, req: TextRequest, model: str) -> TextResponse:
        """A whole ``/v1/completions`` answer. Raises GatewayError
        (UnsupportedCapability for a kind or host without the legacy API)."""
        return await complete_text(self, req, model)

    @asynccontextmanager
    async def stream_request(
        self,
        prepare: Callable[[], Awaitable[UpstreamRequest]],
        decoder: StreamDecoder,
        model: str,
    ) -> AsyncIterator[AsyncIterator[list[ChatChunk]]]:
        """The streamed answer to the request ``prepare`` makes, read by ``decoder``."""
        upstream_request = await prepare()
        try:
            async with self.transport.request(upstream_request) as response:
                if self.on_headers is not None:
                    self.on_headers(response.headers)
                if not 200 <= response.status < 300:
                    raise self._failure(response, await self._read(response))

                async def chunks() -> AsyncGenerator[list[ChatChunk]]:
                    # A plugin's decoder that does not say what it holds: the bytes fed
                    # since it last gave chunks.
                    unread = 0
                    try:
                        async with aclosing(response.aiter_bytes()) as body:
                            async for data in body:
                                batch = decoder.feed(data)
                                unread = 0 if batch else unread + len(data)
                                if getattr(decoder, "buffered", unread) > self._max_response:
                                    # Raised inside the body's loop: the connection closes.
                                    raise StreamError(
                                        "upstream sent a stream event larger than "
                                        f"server.max_response ({self._max_response} bytes)"
                                    )
                                if batch:
                                    yield _named(batch, model)
                        batch = decoder.close()
                        if batch:
                            yield _named(batch, model)
                    except GatewayError as exc:  # in-band errors carry upstream text too
                        if carried := take_decoded(exc):  # a decoder's: they go out first
                            yield _named(carried, model)
                        raise self._scrubbed(exc) from None

                async with aclosing(chunks()) as iterator:
                    yield iterator
        except GatewayError as exc:  # the transport's text may quote a header
            raise self._scrubbed(exc) from None

    async def count_tokens(self, body: Mapping[str, Any], model: str) -> int:
        """The provider's own count of a request's input tokens (the client's body in
        the provider's format). Raises GatewayError; Unsupported when it cannot count."""
        adapter = self.adapter
        if not isinstance(adapter, TokenCounter):
            raise UnsupportedCapability(f"provider {self.name} ({self.kind}) does not count tokens")
        request = adapter.sign(adapter.count_tokens_request(body, model), datetime.now(UTC))
        try:
            async with self.transport.request(request) as response:
                answer = await self._read(response)
        except GatewayError as exc:
            raise self._scrubbed(exc) from None
        if not 200 <= response.status < 300:
            raise self._failure(response, answer)
        return adapter.parse_token_count(answer)

    async def probe(self) -> None:
        # Off the data path: httpx2, not the lean pool.
        request = self.adapter.sign(self.adapter.probe_request(), datetime.now(UTC))
        try:
            async with self._side.request(request) as response:
                body = await self._read(response)
        except GatewayError as exc:
            raise self._scrubbed(exc) from None
        if not 200 <= response.status < 300:
            raise self._failure(response, body)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.transport.run(task_status=task_status)

    async def aclose(self) -> None:
        await self.transport.aclose()
        if self._side_transport is not None:
            await self._side_transport.aclose()


_SIGNERS = trio.CapacityLimiter(4)


def _too_large(status: int, limit: int) -> SerializationError:
    return SerializationError(
        f"upstream answer (HTTP {status}) is larger than server.max_response ({limit} bytes)",
        upstream_status=status,
    )


def _named(batch: list[ChatChunk], model: str) -> list[ChatChunk]:
    """Chunks that do not name their model get the one asked for."""
    if all(chunk.model for chunk in batch):
        return batch
    return [chunk if chunk.model else attrs.evolve(chunk, model=model) for chunk in batch]
