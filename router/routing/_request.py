"""One request on its way through the engine: what was asked, where it goes, what bounds
it, and what happened to it.

:class:`RoutedRequest` is the one object the engine is handed per request; it carries
what used to travel as positional parameters. :class:`RequestTrace` is where the engine
writes down facts as they happen, for the response headers, the log line, metrics,
spans and errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import attrs

from adapters import EmbeddingRequest, GatewayError, GatewayRequest, TextRequest, Usage
from rules import AnswerCheck, BatchConfig, Node

from ..upstream._upstream import Upstream

__all__ = ["AttemptRecord", "RequestOptions", "RequestTrace", "RoutedRequest"]

#: What a request asks: a chat, embeddings, or a legacy text completion.
R = TypeVar("R", GatewayRequest, EmbeddingRequest, TextRequest)


@attrs.define
class AttemptRecord:
    """One attempt on a leaf target, for metrics and its trace span.

    Times are trio's clock; ``result`` is "ok", "cancelled" or the failure's kind
    (see :func:`attempt_result`).
    """

    target: str
    model: str
    upstream: Upstream
    started: float
    ended: float = 0.0
    result: str = "ok"
    error: str | None = None  # the failure's class name
    retry: bool = False  # a retry of the same target after a fast failure


@attrs.define
class RequestTrace:
    """What happened to one request, for its response headers, log line, metrics, spans
    and errors. The engine records facts here; the app reports them when the request ends.
    """

    route: str
    attempts: int = 0
    status: int = 0  # the HTTP status sent to the client, 0 until one is
    target: str | None = None
    arm: str | None = None  # the split arm taken, if a split was on the way
    hedges: int = 0
    retries: int = 0
    errors: list[GatewayError] = attrs.field(factory=list)
    fallbacks: int = 0  # moves to the next candidate after a failure
    hedge_won: bool = False  # a hedge (not the first candidate) gave the answer
    log: list[AttemptRecord] = attrs.field(factory=list)
    #: Set by the app: the route as config knows it ("-" for an unknown model).
    known_route: str = ""
    ttft: float | None = None  # seconds to the first content sent (streams)
    tokens_in: int | None = None
    tokens_out: int | None = None
    response_model: str | None = None
    finish_reasons: tuple[str, ...] = ()
    error: str | None = None  # the class name of the failure the client got
    outcome: str = ""  # the metrics outcome, set when the request ends
    client: str | None = None  # the name of the caller's key, when keys are configured
    cost_usd: float | None = None
    #: What the request was charged for: the upstream's usage, else counted from the
    #: text (cache and reasoning details included, for the usage ledger).
    usage: Usage | None = None
    cache: str | None = None  # "hit" or "miss" on a route with a cache
    rule: str | None = None  # which ``when`` rule chose (or "default"), on routes with any
    #: Each try to resume a broken stream: (target, "resumed" | "failed"); the target is
    #: the one that took over, or the one that broke when nobody did.
    resumes: list[tuple[str, str]] = attrs.field(factory=list)
    #: With ``server.log_bodies``: the request's text and the answer's, unredacted
    #: (the access log redacts them as it writes them); None otherwise.
    prompt: str | None = None
    answer: str | None = None


@attrs.frozen
class RequestOptions:
    """What bounds one request: its deadline (trio time), retries per target, time to
    first token (streams), and its headers (lower-case names) for sticky splits.

    ``deadline`` bounds the wait for an answer (a stream's, up to its first content
    chunk); ``stream_deadline`` bounds a committed stream (None: ``deadline`` too).
    """

    deadline: float
    retries: int = 0
    first_token_timeout: float = 15.0
    #: The request's headers as the server gave them (raw, lower-case names); read only
    #: by a sticky split, so nothing is decoded for other requests.
    headers: Sequence[tuple[bytes, bytes]] = ()
    #: The request's estimated tokens, when the caller already has it (for rate limits).
    tokens: int | None = None
    #: Resumes allowed when a committed stream breaks (0: a break ends the stream).
    resume_max: int = 0
    stream_deadline: float | None = None
    #: Embeddings: combine with concurrent requests to the same target (the route's
    #: ``batch``), or None to call alone.
    batch: BatchConfig | None = None
    #: What an answer must be (the route's ``validate``, or the client's JSON Schema);
    #: one that fails is its target's failure (:mod:`._validation`).
    check: AnswerCheck | None = None

    @property
    def stream_end(self) -> float:
        """When a committed stream must have ended (trio time)."""
        return self.deadline if self.stream_deadline is None else self.stream_deadline

    def sticky_key(self, sticky: str | None) -> str | None:
        """The value a split with ``sticky`` hashes: a header, or the client's key."""
        if sticky is None:
            return None
        if sticky.startswith("header:"):
            return self._header(sticky[7:].lower())
        key = self._header("x-api-key") or self._header("authorization")
        return key.removeprefix("Bearer ").strip() if key else None

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower-case), or None when it was not sent."""
        return self._header(name)

    def _header(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None


@attrs.define
class RoutedRequest(Generic[R]):
    """A request and its route: the engine's whole input for one request.

    Attributes:
        node: The compiled policy node of the route (or a direct ``provider:model``).
        request: What the client asked, in the unified format.
        trace: Where the engine writes down what happened.
        options: The deadline, retries, first-token time and headers.
    """

    node: Node
    request: R
    trace: RequestTrace
    options: RequestOptions
