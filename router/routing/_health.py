"""Active health checks: a cheap probe per provider, on a timer, feeding the breakers.

Passive checks (real requests failing) open a circuit only after requests have paid
for it; a probe notices an outage between requests, and notices the recovery without
sending a client's request to find out. A probe's verdict goes to the breaker of each
of the provider's targets: a failure counts like a failed request; a success closes a
half-open circuit (it is the probe the breaker was waiting for) and resets the count of
consecutive failures. A circuit that is open and not yet due a probe is left alone.

A probe that raises anything else (a transport's own exception) fails the same way,
named by its type only: its message may hold a header value, a key included. Probes run
in the daemon's top nursery, so an exception let through would end the daemon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from adapters import GatewayError, NetworkError, Timeout

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from rules import HealthCheck

    from ..upstream._upstream import Upstream
    from ._stats import TargetRegistry

__all__ = ["apply_verdict", "health_loop", "probe_once"]


async def probe_once(upstream: Upstream, check: HealthCheck) -> GatewayError | None:
    """One probe: None if healthy, else the failure."""
    with trio.move_on_after(check.timeout):
        try:
            await upstream.probe()
        except GatewayError as exc:
            return exc
        except Exception as exc:  # any failure of the probe is the provider's
            return NetworkError(f"health probe failed: {type(exc).__name__}")
        return None
    return Timeout(f"health probe took longer than {check.timeout:g}s")


def apply_verdict(
    registry: TargetRegistry, targets: Iterable[str], error: GatewayError | None, now: float
) -> None:
    for name in targets:
        state = registry.get(name)
        if error is not None:
            state.breaker.record_failure(now)
            state.last_error = f"health probe: {type(error).__name__}: {error.message}"
        elif state.breaker.allow(now):
            state.breaker.record_success(now)


async def health_loop(
    upstream: Upstream,
    check: HealthCheck,
    registry: TargetRegistry,
    targets: Callable[[], Iterable[str]],
) -> None:
    """Probe ``upstream`` every ``check.interval`` until cancelled.

    Args:
        targets: The provider's targets in the rules in force (read at each probe, so
            a reload is followed).
    """
    while True:
        error = await probe_once(upstream, check)
        apply_verdict(registry, targets(), error, trio.current_time())
        await trio.sleep(check.interval)
