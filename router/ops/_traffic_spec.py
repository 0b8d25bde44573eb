"""The traffic shape ``llm-router simulate --traffic`` sends: parsed from one string.

``rate=50/s,burst=200,stream=0.3,prompt=500`` reads as: requests arrive at random
(Poisson) at 50 a second in all; on top of that 200 arrive at once at the start of
every minute; 30% of them stream; each user message is 500 words (tokens, as the
simulated provider counts them). Every key is optional:

- ``rate=N/s`` (or ``/m``, ``/h``): mean arrivals over all routes; default ``10/s``.
- ``burst=N`` or ``burst=N@D``: N extra requests at once every D (default ``1m``).
- ``stream=F``: the share of streamed requests, 0 to 1; default 0.
- ``prompt=N`` or ``prompt=A-B``: words in the prompt, fixed or uniform; default 50.
- ``max_tokens=N``: caps each answer (the ``echo`` model repeats the prompt).
- ``routes=a+b``: the routes (or ``provider:model`` targets) to send to, in equal
  shares; default every route of the config.
"""

from __future__ import annotations

import attrs

from rules import parse_duration

__all__ = ["TrafficSpec", "parse_traffic"]

_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


@attrs.frozen
class TrafficSpec:
    """What arrives, and how (see the module docstring for the syntax)."""

    rate: float = 10.0  # requests per second, over all routes
    burst: int = 0
    burst_every: float = 60.0
    stream: float = 0.0
    prompt: tuple[int, int] = (50, 50)
    max_tokens: int | None = None
    routes: tuple[str, ...] = ()  # empty: every route

    def describe(self) -> str:
        """The spec back in its own syntax, for the report's header."""
        low, high = self.prompt
        parts = [f"rate={self.rate:g}/s", f"stream={self.stream:g}"]
        parts.append(f"prompt={low}" if low == high else f"prompt={low}-{high}")
        if self.burst:
            parts.append(f"burst={self.burst}@{self.burst_every:g}s")
        if self.max_tokens is not None:
            parts.append(f"max_tokens={self.max_tokens}")
        if self.routes:
            parts.append("routes=" + "+".join(self.routes))
        return ",".join(parts)


def parse_traffic(text: str) -> TrafficSpec:
    """Read ``key=value,...``.

    Raises:
        ValueError: an unknown key or a value out of its range, named in the message.
    """
    fields: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise ValueError(f"traffic: {item!r} is not key=value")
        try:
            _read(key, value, fields)
        except ValueError as exc:
            raise ValueError(f"traffic: {key}: {exc}") from None
    return TrafficSpec(**fields)  # type: ignore[arg-type]


def _read(key: str, value: str, fields: dict[str, object]) -> None:
    if key == "rate":
        count, _, per = value.partition("/")
        if per.strip() not in _PER:
            raise ValueError("give it as N/s, N/m or N/h")
        fields["rate"] = _positive(float(count)) / _PER[per.strip()]
    elif key == "burst":
        count, _, every = value.partition("@")
        fields["burst"] = _natural(count)
        if every:
            fields["burst_every"] = _positive(parse_duration(every))
    elif key == "stream":
        share = float(value)
        if not 0 <= share <= 1:
            raise ValueError("must be between 0 and 1")
        fields["stream"] = share
    elif key == "prompt":
        low, _, high = value.partition("-")
        lo, hi = _natural(low), _natural(high or low)
        if not 0 < lo <= hi:
            raise ValueError("need 0 < A <= B")
        fields["prompt"] = (lo, hi)
    elif key == "max_tokens":
        limit = _natural(value)
        _positive(limit)
        fields["max_tokens"] = limit
    elif key == "routes":
        fields["routes"] = tuple(r for r in (n.strip() for n in value.split("+")) if r)
    else:
        raise ValueError("unknown key (rate, burst, stream, prompt, max_tokens, routes)")


def _natural(text: str) -> int:
    number = int(text.strip())
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _positive(number: float) -> float:
    if number <= 0:
        raise ValueError("must be positive")
    return number
