"""Latency stats (EWMA, failure penalty, quantiles) and the per-target registry."""

from __future__ import annotations

import math
import random

import pytest

from router.routing._breaker import CircuitBreaker
from router.routing._choose import latency_cost
from router.routing._stats import LatencyStats, TargetRegistry, TargetState


def test_estimate_is_none_before_any_sample() -> None:
    stats = LatencyStats()
    assert stats.estimate() is None
    assert stats.count == 0


def test_ewma_math_exact() -> None:
    stats = LatencyStats(alpha=0.5)
    stats.observe(1.0)
    assert stats.estimate() == 1.0  # the first sample is taken as is
    stats.observe(2.0)
    assert stats.estimate() == 1.5
    stats.observe(0.5)
    assert stats.estimate() == 1.0
    assert stats.count == 3


def test_ewma_default_alpha() -> None:
    stats = LatencyStats()
    stats.observe(1.0)
    stats.observe(2.0)
    assert stats.estimate() == pytest.approx(1.3)


def test_failure_penalty_rule() -> None:
    stats = LatencyStats(alpha=0.5, failure_penalty=2.0, failure_floor=1.0, failure_ceiling=60.0)
    stats.observe_failure(0.01)  # no estimate yet: the floor
    assert stats.estimate() == 1.0
    stats.observe_failure(0.01)  # sample 2 * 1.0
    assert stats.estimate() == 1.5
    stats.observe_failure(10.0)  # a slow failure counts its own time when that is more
    assert stats.estimate() == 5.75
    assert stats.count == 0  # failures are not latency samples
    assert stats.quantile(0.5) is None


def test_failure_penalty_is_capped() -> None:
    stats = LatencyStats(alpha=1.0, failure_ceiling=60.0)
    stats.observe(50.0)
    stats.observe_failure(0.0)
    assert stats.estimate() == 60.0
    stats.observe_failure(0.0)
    assert stats.estimate() == 60.0


def make_target(name: str) -> TargetState:
    return TargetState(name, CircuitBreaker(5, 2, 30.0), LatencyStats())


def test_fast_failing_target_costs_more_than_slow_healthy_one() -> None:
    fast_failing, slow = make_target("a/fast"), make_target("b/slow")
    for _ in range(20):
        slow.record_success(0.0, 2.0)
    fast_failing.record_success(0.0, 0.05)
    assert latency_cost(fast_failing) < latency_cost(slow)
    for now in range(12):
        fast_failing.record_failure(float(now), 0.01, "502")
    assert latency_cost(fast_failing) > latency_cost(slow)


def test_quantile_none_before_min_samples_then_nearest_rank() -> None:
    stats = LatencyStats(min_samples=20)
    for i in range(1, 20):
        stats.observe(i / 100)
    assert stats.quantile(0.9) is None
    stats.observe(0.20)
    assert stats.quantile(0.9) == 0.18  # ceil(0.9 * 20) = 18th of 0.01..0.20
    assert stats.quantile(0.5) == 0.10
    assert stats.quantile(1.0) == 0.20
    assert stats.quantile(0.0) == 0.01


def test_quantile_uses_the_last_window_samples() -> None:
    stats = LatencyStats(window=10, min_samples=5)
    for _ in range(10):
        stats.observe(100.0)
    for _ in range(10):
        stats.observe(1.0)
    assert stats.quantile(1.0) == 1.0
    assert stats.count == 20


def test_quantile_rejects_bad_q() -> None:
    with pytest.raises(ValueError, match="quantile"):
        LatencyStats().quantile(1.5)


@pytest.mark.parametrize(
    "kwargs", [{"alpha": 0.0}, {"alpha": 1.5}, {"window": 0}, {"min_samples": 0}]
)
def test_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        LatencyStats(**kwargs)  # type: ignore[arg-type]


def test_target_state_records_and_snapshots() -> None:
    target = make_target("p/m")
    target.in_flight = 2
    target.record_success(1.0, 0.5)
    target.record_failure(2.0, 0.1, "server_error: 500")
    snap = target.snapshot(2.0)
    assert snap["state"] == "closed"
    assert snap["consecutive_failures"] == 1
    assert snap["in_flight"] == 2
    assert snap["successes"] == 1
    assert snap["failures"] == 1
    assert snap["last_error"] == "server_error: 500"
    assert snap["latency_estimate"] == pytest.approx(0.7 * 0.5 + 0.3 * 1.0)
    assert snap["latency_p90"] is None
    assert snap["latency_samples"] == 1


def test_registry_creates_on_first_use_and_keeps_state() -> None:
    made: list[CircuitBreaker] = []

    def factory() -> CircuitBreaker:
        made.append(CircuitBreaker(1, 1, 10.0))
        return made[-1]

    registry = TargetRegistry(factory)
    a = registry.get("p/a")
    assert a.name == "p/a"
    assert registry.get("p/a") is a
    assert len(made) == 1
    a.record_failure(5.0, 0.1, "boom")
    # A reload: new routes, same registry, same live state.
    registry.retain(["p/a", "p/b"])
    assert registry.get("p/a").breaker.state(5.0) == "open"
    registry.get("p/b")
    assert list(registry.snapshot(5.0)) == ["p/a", "p/b"]
    assert registry.snapshot(5.0)["p/a"]["seconds_until_half_open"] == 10.0


def test_registry_retain_drops_unconfigured_targets() -> None:
    registry = TargetRegistry(lambda: CircuitBreaker(1, 1, 10.0))
    old = registry.get("p/old")
    registry.get("p/kept")
    registry.retain(iter(["p/kept"]))
    assert "p/old" not in registry
    assert "p/kept" in registry
    assert len(registry) == 1
    assert registry.get("p/old") is not old  # comes back fresh if configured again


def test_configure_breakers_retunes_existing_and_new_targets() -> None:
    registry = TargetRegistry(lambda: CircuitBreaker(5, 2, 30.0))
    old = registry.get("p/a")
    old.record_failure(1.0, 0.1, "boom")
    registry.configure_breakers(failures=2, successes=1, open_for=10.0)
    assert registry.get("p/a") is old  # the live state stays
    assert old.breaker.consecutive_failures == 1
    old.record_failure(2.0, 0.1, "boom")
    assert old.breaker.state(2.0) == "open"  # the second failure: the new threshold
    assert old.breaker.state(12.0) == "half_open"  # the new open_for
    fresh = registry.get("p/new").breaker
    assert (fresh.failures, fresh.successes, fresh.open_for) == (2, 1, 10.0)


def test_dynamic_targets_are_bounded_per_provider_least_recently_used_first() -> None:
    registry = TargetRegistry(lambda: CircuitBreaker(1, 1, 10.0), dynamic_limit=3)
    registry.retain(["p:configured", "chat"])
    configured = registry.get("p:configured")
    for name in ("p:a", "p:b", "p:c", "q:a"):
        registry.get(name)
    registry.get("p:a")  # used again: now the most recent
    busy = registry.get("p:b")
    busy.in_flight = 1  # an attempt in flight: never dropped
    registry.get("p:d")  # p:c is the least recently used idle one
    assert "p:c" not in registry
    assert all(name in registry for name in ("p:a", "p:b", "p:d", "q:a", "p:configured"))
    for n in range(10):
        registry.get(f"p:new-{n}")
    assert registry.get("p:configured") is configured  # configured targets stay
    assert registry.get("p:b") is busy
    assert len(registry) == 1 + 3 + 1  # configured, p's limit, q:a
    report = registry.dynamic_snapshot(0.0)
    assert report["p"]["kept"] == 3
    assert report["p"]["dropped"] == 11
    assert list(report["p"]["recent"]) == ["p:b", "p:new-9", "p:new-8"]  # type: ignore[call-overload]
    assert report["q"]["kept"] == 1
    assert list(registry.snapshot(0.0)) == ["p:configured"]  # dynamic ones apart


def test_all_dynamic_targets_in_flight_go_past_the_limit_until_one_is_idle() -> None:
    registry = TargetRegistry(lambda: CircuitBreaker(1, 1, 10.0), dynamic_limit=1)
    registry.get("p:a").in_flight = 1
    registry.get("p:b")
    assert "p:a" in registry  # held by a request
    assert "p:b" in registry
    registry.get("p:a").in_flight = 0
    registry.get("p:c")  # back to the limit: both idle ones go
    assert ("p:a" in registry, "p:b" in registry, "p:c" in registry) == (False, False, True)


def test_a_reload_drops_dynamic_targets_and_pins_what_it_configures() -> None:
    registry = TargetRegistry(lambda: CircuitBreaker(1, 1, 10.0), dynamic_limit=2)
    kept = registry.get("p:a")
    registry.get("p:gone")
    registry.retain(["p:a"])  # p:a is configured now
    assert "p:gone" not in registry
    for name in ("p:x", "p:y", "p:z"):
        registry.get(name)
    assert registry.get("p:a") is kept
    assert registry.dynamic_snapshot(0.0)["p"]["kept"] == 2


def test_quantiles_follow_the_window_as_old_latencies_leave_it() -> None:
    rng = random.Random(5)
    stats = LatencyStats(window=50, min_samples=1)
    seen: list[float] = []
    for _ in range(400):
        seconds = rng.choice([rng.random(), 0.5])  # repeats too: each leaves once
        stats.observe(seconds)
        seen.append(seconds)
        ordered = sorted(seen[-50:])
        for q in (0.0, 0.5, 0.9, 0.99, 1.0):
            assert stats.quantile(q) == ordered[max(math.ceil(q * len(ordered)), 1) - 1]
