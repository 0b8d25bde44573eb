"""Number formats and targets, shared by the report's sections."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """One target from the issues, with the measured value and whether it is met."""

    name: str
    goal: str
    measured: str
    ok: bool | None  # None: not measured


def fmt_rate(value: float | None) -> str:
    """Format req/s."""
    return "-" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    """Format milliseconds with sensible precision."""
    if value is None:
        return "-"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def fmt_mb(value: float | None) -> str:
    """Format MB."""
    return "-" if value is None else f"{value:.1f}"


def fmt_share(value: float | None) -> str:
    """Format a share as a percentage."""
    return "-" if value is None else f"{value:.1%}" if 0.99 < value < 1 else f"{value:.0%}"


def verdict(ok: bool | None) -> str:
    """The result cell of a target."""
    return "n/a" if ok is None else ("PASS" if ok else "**MISS**")


def target_rows(targets: list[Target]) -> str:
    """A Markdown table of targets."""
    rows = "\n".join(f"| {t.name} | {t.goal} | {t.measured} | {verdict(t.ok)} |" for t in targets)
    return f"| target | goal | measured | result |\n| --- | --- | --- | --- |\n{rows}\n"


def fmt_statuses(statuses: dict[str, int] | None) -> str:
    """Non-200 answers by status, e.g. ``502 x 218, 503 x 3``; ``-`` for none."""
    if not statuses:
        return "-"
    return ", ".join(f"{code} x {n:,}" for code, n in sorted(statuses.items()))
