"""OpenTelemetry traces: a SERVER span per request, a CLIENT span per upstream attempt.

Off by default (``[telemetry] exporter = "none"``): then :func:`setup_tracing` creates no
SDK object at all and the app's request path checks one attribute. When on, the spans
are written when the request ends, from what its :class:`RequestTrace` recorded
(attempts with their start and end on trio's clock, mapped onto the wall clock of the
request's start). Building them afterwards keeps OpenTelemetry out of the engine, and
the app's ``finally`` runs on every exit, so a cancelled request (a client that left,
a hedge that lost) still ends its spans, with ``error.type`` saying why.

Attributes follow the GenAI semantic conventions (``gen_ai.*``), plus ``llm_router.*``
for what they have no name for. No attribute holds a secret or an upstream's message:
errors are named by class, and upstream URLs are reduced to their host.
"""

from __future__ import annotations

import contextlib
import sys
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio

from adapters import provider_spec

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

    from rules import TelemetryConfig

    from ..routing._request import AttemptRecord, RequestTrace
    from ..upstream._upstream import Upstream

__all__ = ["Tracing", "setup_tracing"]


class Tracing:
    """The tracer provider of a daemon, or nothing when tracing is off.

    Build it with :func:`setup_tracing`; call :meth:`shutdown` (or ``await aclose()``)
    at exit to flush the spans still queued.
    """

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.tracer: Tracer | None = None
        if provider is not None:
            self.tracer = provider.get_tracer("llm_router")
        self._hosts: weakref.WeakKeyDictionary[Any, tuple[str | None, int | None]]
        self._hosts = weakref.WeakKeyDictionary()

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def shutdown(self) -> None:
        """Flush queued spans and stop the exporter (blocks up to its export timeout)."""
        if self.provider is not None:
            self.provider.shutdown()

    async def aclose(self) -> None:
        """:meth:`shutdown` in a worker thread, so the event loop keeps running."""
        if self.provider is not None:
            await trio.to_thread.run_sync(self.shutdown)

    def record(
        self,
        trace: RequestTrace,
        request_id: str,
        wall_start_ns: int,
        started: float,
        ended: float,
    ) -> Span | None:
        """Emit the spans of one finished request; returns its (ended) SERVER span.

        Args:
            trace: What happened.
            request_id: The request's id, as the access log has it.
            wall_start_ns: Wall clock (ns since the epoch) when the request arrived.
            started, ended: The request's arrival and end on trio's clock; attempt
                times are placed relative to ``started``.
        """
        tracer = self.tracer
        if tracer is None:
            return None
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

        def wall(t: float) -> int:
            return wall_start_ns + int((t - started) * 1e9)

        route = trace.known_route or "-"
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "llm_router.route": route,
            "llm_router.request_id": request_id,
            "llm_router.attempts": trace.attempts,
            "llm_router.hedged": trace.hedges > 0,
            "http.response.status_code": trace.status or 499,
        }
        if trace.route:
            attributes["gen_ai.request.model"] = trace.route
        if trace.target:
            attributes["llm_router.target"] = trace.target
        if trace.resumes:
            attributes["llm_router.resumes"] = [f"{t} {o}" for t, o in trace.resumes]
        winner = _winner(trace)
        if winner is not None:
            attributes["gen_ai.system"] = _system(winner.upstream)
            attributes.update(_response_attributes(trace))
        if trace.error:
            attributes["error.type"] = trace.error
        elif not trace.status:
            attributes["error.type"] = "cancelled"
        span = tracer.start_span(
            f"chat {route}", kind=SpanKind.SERVER, attributes=attributes, start_time=wall_start_ns
        )
        try:
            context = set_span_in_context(span)
            for record in trace.log:
                child = tracer.start_span(
                    f"chat {record.model}",
                    context=context,
                    kind=SpanKind.CLIENT,
                    attributes=self._attempt_attributes(trace, record, record is winner),
                    start_time=wall(record.started),
                )
                if record.error is not None:
                    child.set_status(Status(StatusCode.ERROR, record.error))
                # A stream's winning attempt lasts until the stream ends, not its first token.
                end = ended if record is winner and trace.ttft is not None else record.ended
                child.end(end_time=wall(end or ended))
            if "error.type" in attributes:
                span.set_status(Status(StatusCode.ERROR, attributes["error.type"]))
        finally:
            span.end(end_time=wall(ended))
        return span

    def _attempt_attributes(
        self, trace: RequestTrace, record: AttemptRecord, won: bool
    ) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": _system(record.upstream),
            "gen_ai.request.model": record.model,
            "llm_router.target": record.target,
            "llm_router.result": record.result,
        }
        host, port = self._host(record.upstream)
        if host is not None:
            attributes["server.address"] = host
            if port is not None:
                attributes["server.port"] = port
        if record.error is not None:
            attributes["error.type"] = record.error
        if record.retry:
            attributes["llm_router.retry"] = True
        if won:
            attributes.update(_response_attributes(trace))
        return attributes

    def _host(self, upstream: Upstream) -> tuple[str | None, int | None]:
        """The upstream's host and port (never its path or query), computed once."""
        try:
            return self._hosts[upstream]
        except (KeyError, TypeError):
            pass
        host: tuple[str | None, int | None] = (None, None)
        adapter = getattr(upstream, "adapter", None)
        url = getattr(adapter, "base_url", None) or getattr(adapter, "url", None)
        if isinstance(url, str):
            parts = urlsplit(url)
            try:
                host = (parts.hostname, parts.port)
            except ValueError:  # a port out of range: no port, then
                host = (parts.hostname, None)
        with contextlib.suppress(TypeError):  # not weakly referenceable: compute it each time
            self._hosts[upstream] = host
        return host


def setup_tracing(config: TelemetryConfig, exporter: SpanExporter | None = None) -> Tracing:
    """The daemon's tracing, as ``[telemetry]`` asks.

    Args:
        config: ``[telemetry]``; ``exporter = "none"`` gives a disabled Tracing that
            created nothing.
        exporter: Use this exporter, synchronously (a test's in-memory one), instead of
            the configured one.

    Raises:
        ConfigError: ``exporter = "otlp"`` without the OTLP exporter installed.
    """
    if exporter is None and config.exporter == "none":
        return Tracing()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}),
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        # The batch processor exports from its own worker thread, off the event loop.
        provider.add_span_processor(BatchSpanProcessor(_exporter(config)))
    return Tracing(provider)


def _exporter(config: TelemetryConfig) -> SpanExporter:
    if config.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # Its default ``out`` is the sys.stdout of the day the module was imported.
        return ConsoleSpanExporter(out=sys.stdout)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        from rules import ConfigError

        raise ConfigError(
            (
                'telemetry.exporter: "otlp" needs the OTLP exporter: '
                "pip install 'llm-router[otlp]'",
            )
        ) from None
    return OTLPSpanExporter(endpoint=config.endpoint)


def _system(upstream: Upstream) -> str:
    """The ``gen_ai.system`` of the semantic conventions, as the kind's spec names it."""
    try:
        return provider_spec(upstream.kind).tracing_name
    except KeyError:
        return upstream.kind


def _winner(trace: RequestTrace) -> AttemptRecord | None:
    """The attempt whose answer the client got."""
    if trace.target is None:
        return None
    for record in reversed(trace.log):
        if record.target == trace.target and record.result == "ok":
            return record
    return None


def _response_attributes(trace: RequestTrace) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if trace.response_model:
        attributes["gen_ai.response.model"] = trace.response_model
    if trace.tokens_in is not None:
        attributes["gen_ai.usage.input_tokens"] = trace.tokens_in
    if trace.tokens_out is not None:
        attributes["gen_ai.usage.output_tokens"] = trace.tokens_out
    if trace.finish_reasons:
        attributes["gen_ai.response.finish_reasons"] = list(trace.finish_reasons)
    return attributes
