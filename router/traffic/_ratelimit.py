"""The providers' own rate-limit headers (OpenAI ``x-ratelimit-*``, Anthropic
``anthropic-ratelimit-*``), read into what :meth:`RateLimiter.note_upstream` takes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

# The engine and the app import the estimate from here until they take it from _tokens.
from ._tokens import estimate_tokens

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "UpstreamLimits",
    "estimate_tokens",
    "parse_anthropic_headers",
    "parse_go_duration",
    "parse_openai_headers",
    "parse_rfc3339",
]


# -- provider headers ---------------------------------------------------------------------


@attrs.frozen
class UpstreamLimits:
    """What a provider's rate-limit headers said, ready for :meth:`RateLimiter.note_upstream`.

    ``reset_after`` is the reset of the scarcest dimension (see :func:`_pick_reset`).
    """

    remaining_requests: int | None
    remaining_tokens: int | None
    reset_after: float | None


_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|μs|ns)")
_GO_UNITS = {
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek mu: Go accepts both
    "ns": 1e-9,
}


def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go ``time.Duration`` string ("1s", "6m0s", "20ms", "1h2m3.5s", "0");
    None for anything else (including negative durations)."""
    text = text.strip()
    if text == "0":
        return 0.0
    if not text or _GO_PART.sub("", text):
        return None
    return sum(float(number) * _GO_UNITS[unit] for number, unit in _GO_PART.findall(text))


def parse_rfc3339(text: str, now: datetime) -> float | None:
    """Seconds from ``now`` (timezone-aware) to an RFC 3339 timestamp, at least 0; None
    for garbage or a timestamp without an offset."""
    try:
        when = datetime.fromisoformat(text.strip().upper())
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _count(headers: Sequence[tuple[str, str]], name: str) -> int | None:
    value = _header(headers, name)
    if value is None:
        return None
    try:
        count = int(value.strip())
    except ValueError:
        return None
    return count if count >= 0 else None


# (remaining, limit, reset_after) of one dimension (requests, tokens)
_Dim = tuple[int | None, int | None, float | None]


def _pick_reset(dims: Sequence[_Dim]) -> float | None:
    """The reset of the dimension that runs out first.

    Providers reset dimensions separately (OpenAI: requests in "1s", tokens in "6m0s"),
    and :meth:`RateLimiter.note_upstream` takes one reset; blocking for the later one
    when only the other is short would keep a target idle for minutes. So: the latest
    reset among dimensions at 0; else, when the provider sent every limit, the reset of
    the smallest remaining share; else the soonest reset (too short a block corrects
    itself with the next response's headers, too long a one does not).
    """
    known = [(rem, lim, reset) for rem, lim, reset in dims if rem is not None and reset is not None]
    if not known:
        resets = [reset for _, _, reset in dims if reset is not None]
        return min(resets) if resets else None
    empty = [reset for rem, _, reset in known if rem == 0 and reset is not None]
    if empty:
        return max(empty)
    shares = [(rem / lim, reset) for rem, lim, reset in known if rem and lim and reset is not None]
    if len(shares) == len(known):
        least = min(share for share, _ in shares)
        return max(reset for share, reset in shares if share == least)
    return min(reset for _, _, reset in known if reset is not None)


def _result(requests: _Dim, tokens: _Dim) -> UpstreamLimits | None:
    limits = UpstreamLimits(requests[0], tokens[0], _pick_reset((requests, tokens)))
    return None if limits == UpstreamLimits(None, None, None) else limits


def parse_openai_headers(headers: Sequence[tuple[str, str]]) -> UpstreamLimits | None:
    """``x-ratelimit-{remaining,limit,reset}-{requests,tokens}`` (resets are Go
    durations). None when none is usable; garbage values count as missing."""

    def dim(kind: str) -> _Dim:
        reset = _header(headers, f"x-ratelimit-reset-{kind}")
        return (
            _count(headers, f"x-ratelimit-remaining-{kind}"),
            _count(headers, f"x-ratelimit-limit-{kind}"),
            parse_go_duration(reset) if reset is not None else None,
        )

    return _result(dim("requests"), dim("tokens"))


def parse_anthropic_headers(
    headers: Sequence[tuple[str, str]], now: datetime
) -> UpstreamLimits | None:
    """``anthropic-ratelimit-{requests,tokens}-{remaining,limit,reset}`` (resets are RFC
    3339 timestamps, taken relative to the timezone-aware ``now``). Without the combined
    ``tokens-*`` headers, the smaller of ``input-tokens-remaining`` and
    ``output-tokens-remaining`` stands for tokens. None when none is usable."""

    def dim(kind: str) -> _Dim:
        reset = _header(headers, f"anthropic-ratelimit-{kind}-reset")
        return (
            _count(headers, f"anthropic-ratelimit-{kind}-remaining"),
            _count(headers, f"anthropic-ratelimit-{kind}-limit"),
            parse_rfc3339(reset, now) if reset is not None else None,
        )

    tokens = dim("tokens")
    if tokens[0] is None:
        split = [d for d in (dim("input-tokens"), dim("output-tokens")) if d[0] is not None]
        if split:
            tokens = min(split, key=lambda d: d[0] or 0)
    return _result(dim("requests"), tokens)
