"""Durations, sizes and percentiles: the units of the config language."""

import pytest

from rules import Percentile, parse_duration, parse_percentile, parse_size
from rules._units import format_duration, format_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("0s", 0.0),
        ("1m30s", 90.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["p9x", "", "5", "5 s", "-1s", "5sec", "s", "1.s", "5S"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_parse_duration_message() -> None:
    with pytest.raises(ValueError, match=r'^"p9x" is not a duration$'):
        parse_duration("p9x")


def test_parse_duration_hints_at_missing_unit() -> None:
    with pytest.raises(ValueError, match=r'add a unit: "30s" or "30ms"'):
        parse_duration("30")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100B", 100),
        ("512KiB", 512 * 1024),
        ("4MiB", 4 * 1024**2),
        ("1GiB", 1024**3),
        ("1.5KiB", 1536),
        (2048, 2048),
        (0, 0),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["4MB", "4mib", "4 MiB", "MiB", "", "4", "-1KiB", "1KB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a size \(use B, KiB, MiB or GiB\)"):
        parse_size(text)


def test_parse_size_rejects_negative_int() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_size(-1)


@pytest.mark.parametrize(
    ("text", "q"), [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("p1", 0.01)]
)
def test_parse_percentile(text: str, q: float) -> None:
    assert parse_percentile(text) == Percentile(q)
    assert str(parse_percentile(text)) == text


@pytest.mark.parametrize("text", ["p0", "p100", "p9x", "90", "P90", "p", "p-5"])
def test_parse_percentile_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a percentile"):
        parse_percentile(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "250ms"), (30.0, "30s"), (600.0, "10m"), (7200.0, "2h"), (1.5, "1.5s"), (0, "0s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("size", "text"), [(4 * 1024**2, "4MiB"), (1536, "1536B"), (0, "0B"), (1024**3, "1GiB")]
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text
