"""Units in the config language: durations, sizes and latency percentiles.

Each has a strict parser (a unit is always required in text: ``"30"`` is rejected
because seconds and milliseconds are both plausible readings) and a formatter that
gives back the shortest spelling, used by ``llm-router check``.
"""

import math
import re

import attrs

from ._errors import describe

__all__ = [
    "Percentile",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_percentile",
    "parse_size",
]

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# One or more number+unit pairs, largest first by convention ("1m30s"), as Go spells them.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")

_SIZE_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)(B|KiB|MiB|GiB|TiB)")

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


def parse_duration(text: str) -> float:
    """Parse a duration such as ``250ms``, ``5s``, ``2m``, ``1h`` or ``1m30s``.

    Args:
        text: The duration; a unit (``ms``, ``s``, ``m``, ``h``) is required.

    Returns:
        The duration in seconds.

    Raises:
        ValueError: ``"p9x" is not a duration``.
    """
    if not isinstance(text, str) or not _DURATION.fullmatch(text):
        hint = ""
        if isinstance(text, str) and re.fullmatch(r"\d+(?:\.\d+)?", text):
            hint = f' (add a unit: "{text}s" or "{text}ms")'
        raise ValueError(f"{describe(text)} is not a duration{hint}")
    return sum(
        float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(text)
    )


def parse_size(text: str | int) -> int:
    """Parse a size such as ``512KiB``, ``4MiB``, ``1GiB`` or ``100B`` (1024-based).

    Args:
        text: The size; an ``int`` is a number of bytes. Decimal units (``MB``) are
            rejected rather than guessed at.

    Returns:
        The size in bytes (fractions of a byte are dropped: ``1.5KiB`` is 1536).

    Raises:
        ValueError: ``"4MB" is not a size (use B, KiB, MiB or GiB)``.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"{text} is not a size (it is negative)")
        return text
    match = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{describe(text)} is not a size (use B, KiB, MiB or GiB)")
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit])


@attrs.frozen
class Percentile:
    """A latency percentile, e.g. hedge ``after = "p90"``.

    Attributes:
        q: The quantile, strictly between 0 and 1 (``p90`` is 0.9).
    """

    q: float = attrs.field(
        validator=attrs.validators.and_(attrs.validators.gt(0.0), attrs.validators.lt(1.0))
    )

    def __str__(self) -> str:
        return f"p{self.q * 100:.10g}"


def parse_percentile(text: str) -> Percentile:
    """Parse ``p50`` .. ``p99.9`` into a `Percentile`.

    Raises:
        ValueError: ``"p100" is not a percentile``.
    """
    match = _PERCENTILE.fullmatch(text) if isinstance(text, str) else None
    if match is None or not 0 < float(match.group(1)) < 100:
        raise ValueError(f"{describe(text)} is not a percentile")
    # round() so that p99.9 is 0.999, not 0.9990000000000001.
    return Percentile(round(float(match.group(1)) / 100, 12))


def format_duration(seconds: float) -> str:
    """Spell a duration the way a person would write it in the file (``250ms``)."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.6g}ms"
    for unit, factor in (("h", 3600.0), ("m", 60.0)):
        if seconds >= factor and math.isclose(seconds % factor, 0.0, abs_tol=1e-9):
            return f"{seconds / factor:.6g}{unit}"
    return f"{seconds:.6g}s"


def format_size(size: int) -> str:
    """Spell a byte count with the largest exact 1024-based unit (``4MiB``)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _SIZE_UNITS[unit]
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
