"""The status page's sample ring: what one interval counts, how samples close on the
clock, how many are kept, and how readers are woken."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import orjson
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from router.http._timeline import KEEP, MAX_TARGETS, Timeline, quantile
from router.routing._request import AttemptRecord, RequestTrace

IDLE = {"a:m": (0, "closed")}


def attempt(target: str, started: float, ended: float, result: str = "ok") -> AttemptRecord:
    upstream: Any = None  # never read by the timeline
    return AttemptRecord(target, "m", upstream, started, ended, result)


def test_an_interval_counts_attempts_failures_and_latencies_per_target() -> None:
    timeline = Timeline(wall=lambda: 100.0)
    for latency in (0.1, 0.2, 0.3, 0.4):
        timeline.record(RequestTrace("chat", log=[attempt("a:m", 5.0, 5.0 + latency)]))
    failed = attempt("a:m", 5.0, 5.5, "server_error")
    lost = attempt("b:m", 5.0, 5.1, "cancelled")  # a hedge's loser: not a failure
    won = attempt("a:m", 5.0, 6.0)
    timeline.record(
        RequestTrace("chat", log=[failed, lost, won], hedges=1, target="a:m", ttft=0.25)
    )
    sample = timeline.tick({"a:m": (2, "open"), "b:m": (0, "half_open"), "c:m": (0, "closed")})
    assert sample.t == 100.0
    # attempts, failures, p50 ms, p99 ms, TTFT p50 ms, in flight, circuit
    assert sample.targets["a:m"] == [6, 1, 300.0, 1000.0, 250.0, 2, 2]
    assert sample.targets["b:m"] == [1, 0, None, None, None, 0, 1]
    assert sample.targets["c:m"] == [0, 0, None, None, None, 0, 0]
    assert sample.totals == [5, 1, 0, 0, 0, 0]
    decoded = orjson.loads(sample.json)
    assert decoded == {"t": 100.0, "x": sample.targets, "g": sample.totals}


def test_totals_count_retries_resumes_and_cache_lookups() -> None:
    timeline = Timeline()
    retried = attempt("a:m", 0, 1, "server_error")
    again = attempt("a:m", 1, 2)
    again.retry = True
    timeline.record(RequestTrace("chat", log=[retried, again], resumes=[("b:m", "resumed")]))
    timeline.record(RequestTrace("story", cache="hit"))
    timeline.record(RequestTrace("story", cache="miss"))
    assert timeline.tick(IDLE).totals == [3, 0, 1, 1, 1, 1]
    assert timeline.tick(IDLE).totals == [0] * 6  # the next interval starts afresh


def test_only_the_targets_of_the_rules_in_force_are_sampled() -> None:
    timeline = Timeline()
    timeline.record(RequestTrace("x", log=[attempt("gone:m", 0, 1)]))
    assert set(timeline.tick(IDLE).targets) == {"a:m"}


def test_an_interval_counts_a_bounded_number_of_targets() -> None:
    timeline = Timeline()
    for n in range(MAX_TARGETS + 10):
        timeline.record(RequestTrace("x", log=[attempt(f"p:m{n}", 0, 1)]))
    gauges = {f"p:m{n}": (0, "closed") for n in range(MAX_TARGETS + 10)}
    counted = [name for name, x in timeline.tick(gauges).targets.items() if x[0]]
    assert len(counted) == MAX_TARGETS


def test_a_burst_keeps_a_bounded_uniform_sample_of_latencies() -> None:
    timeline = Timeline(seed=7)
    n = 20 * KEEP
    for i in range(n):
        timeline.record(RequestTrace("chat", log=[attempt("a:m", 0.0, (i + 1) / n)]))
    interval = timeline._targets["a:m"]
    assert len(interval.latencies) == KEEP
    sample = timeline.tick(IDLE)
    attempts, _, p50, p99, *_ = sample.targets["a:m"]
    assert attempts == n  # counts stay exact
    assert p50 is not None
    assert p99 is not None
    assert 400 < p50 < 600  # uniform on (0, 1] s: the median near 500 ms
    assert p99 > 950


def test_the_ring_keeps_the_span_and_readers_find_what_they_missed() -> None:
    timeline = Timeline(step=1.0, span=10.0, wall=iter(range(1000)).__next__)
    for _ in range(25):
        timeline.tick(IDLE)
    assert len(timeline.samples) == 10
    assert [s.t for s in timeline.since(0)] == list(range(15, 25))  # older ones are gone
    assert [s.t for s in timeline.since(22)] == [22, 23, 24]
    assert timeline.since(25) == []


def test_a_full_ring_holds_its_samples_not_the_encoders_buffers() -> None:
    timeline = Timeline(step=1.0, span=100.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(100):
            timeline.tick(IDLE)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(timeline.samples) == 100
    # A sample is about 0.6 KB; orjson's own buffer was 4 KB of each.
    assert held < 100 * 1500


async def test_samples_close_on_a_fixed_grid_of_the_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = Timeline(step=1.0, wall=trio.current_time)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(timeline.run, lambda: IDLE)
        await trio.sleep(0.5)
        timeline.record(RequestTrace("chat", log=[attempt("a:m", 0.0, 0.2)]))
        await trio.sleep(2.9)
        nursery.cancel_scope.cancel()
    assert [s.t - start for s in timeline.samples] == [1.0, 2.0, 3.0]
    assert [s.targets["a:m"][0] for s in timeline.samples] == [1, 0, 0]


async def test_a_stalled_loop_starts_a_new_grid_instead_of_catching_up(
    mock_clock: trio.testing.MockClock,  # moved by hand: a stall is a jump
) -> None:
    timeline = Timeline(step=1.0, wall=trio.current_time)
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(timeline.run, lambda: IDLE)
        for jump in (1.0, 4.5, 1.0):  # 4.5 s: the loop was busy elsewhere
            mock_clock.jump(jump)
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert [s.t - start for s in timeline.samples] == [1.0, 5.5, 6.5]


async def test_readers_wake_at_each_sample_and_end_on_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    timeline = Timeline()
    woken: list[tuple[float, bool]] = []

    async def reader() -> None:
        seen = 0
        while True:
            more = await timeline.wait_past(seen)
            woken.append((trio.current_time(), more))
            if not more:
                return
            seen = timeline.closed_count

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.sleep(1)
        timeline.tick(IDLE)
        await trio.sleep(1)
        timeline.tick(IDLE)
        await trio.sleep(1)
        timeline.close()
    assert woken == [(1.0, True), (2.0, True), (3.0, False)]
    assert not await timeline.wait_past(0)  # closed: no reader waits any more


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=200), st.floats(0.01, 1.0))
def test_a_quantile_is_a_value_with_enough_values_at_or_below_it(
    values: list[float], q: float
) -> None:
    found = quantile(values, q)
    assert found in values
    assert sum(1 for v in values if v <= found) >= math.ceil(q * len(values))
    assert sum(1 for v in values if v < found) < math.ceil(q * len(values)) or q == 0


@pytest.mark.parametrize(("q", "expected"), [(0.5, 2.0), (0.99, 4.0), (0.25, 1.0)])
def test_quantile_by_nearest_rank(q: float, expected: float) -> None:
    assert quantile([4.0, 1.0, 3.0, 2.0], q) == expected
    assert quantile([], q) is None
