"""``[telemetry]``: where the daemon's traces go."""

from typing import Any, Literal

import attrs

from ._errors import FieldError
from ._fields import non_empty

__all__ = ["TelemetryConfig"]


def _check_endpoint(instance: Any, attribute: "attrs.Attribute[Any]", value: str) -> None:
    if not value.startswith(("http://", "https://")):
        # The value is not echoed: a collector URL may carry credentials.
        raise FieldError("must be an http:// or https:// URL", (attribute.name,))


def _check_ratio(instance: Any, attribute: "attrs.Attribute[Any]", value: float) -> None:
    if not 0 <= value <= 1:
        raise FieldError(f"must be between 0 and 1, got {value:g}", (attribute.name,))


@attrs.frozen
class TelemetryConfig:
    """``[telemetry]``: OpenTelemetry traces, a span per request and one per attempt.

    Attributes:
        exporter: ``"none"`` (the default: no tracing objects exist at all),
            ``"console"`` (spans as JSON on stdout) or ``"otlp"`` (OTLP over HTTP,
            needs the ``otlp`` extra).
        endpoint: The OTLP/HTTP traces URL of the collector.
        service_name: The ``service.name`` resource attribute.
        sample_ratio: Fraction of requests traced (a client's sampled ``traceparent``
            is not consulted: the daemon starts its own traces).
    """

    exporter: Literal["none", "console", "otlp"] = "none"
    endpoint: str = attrs.field(
        default="http://127.0.0.1:4318/v1/traces", validator=_check_endpoint
    )
    service_name: str = attrs.field(default="llm-router", validator=non_empty)
    sample_ratio: float = attrs.field(default=1.0, validator=_check_ratio)
