"""The circuit breaker as transcripts: every transition at an exact ``now``."""

from __future__ import annotations

import pytest

from router.routing._breaker import CircuitBreaker


def opened(at: float = 10.0) -> CircuitBreaker:
    """A breaker (3 failures, 2 successes, 30 s) that opened at ``at``."""
    breaker = CircuitBreaker(failures=3, successes=2, open_for=30.0)
    for _ in range(3):
        breaker.record_failure(at)
    return breaker


def test_starts_closed_and_allows() -> None:
    breaker = CircuitBreaker(failures=3, successes=2, open_for=30.0)
    assert breaker.state(0.0) == "closed"
    assert breaker.allow(0.0)
    assert breaker.allow(0.0)  # closed: no probe limit
    assert breaker.opened_at is None


def test_opens_after_n_consecutive_failures() -> None:
    breaker = CircuitBreaker(failures=3, successes=2, open_for=30.0)
    breaker.record_failure(1.0)
    breaker.record_failure(2.0)
    assert breaker.state(2.0) == "closed"
    assert breaker.consecutive_failures == 2
    breaker.record_failure(3.0)
    assert breaker.state(3.0) == "open"
    assert breaker.opened_at == 3.0
    assert not breaker.allow(3.0)


def test_a_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failures=3, successes=2, open_for=30.0)
    breaker.record_failure(1.0)
    breaker.record_failure(2.0)
    breaker.record_success(3.0)
    assert breaker.consecutive_failures == 0
    breaker.record_failure(4.0)
    breaker.record_failure(5.0)
    assert breaker.state(5.0) == "closed"
    breaker.record_failure(6.0)
    assert breaker.state(6.0) == "open"
    assert breaker.opened_at == 6.0


def test_half_open_exactly_at_opened_at_plus_open_for() -> None:
    breaker = opened(at=10.0)
    assert breaker.state(39.999) == "open"
    assert not breaker.allow(39.999)
    assert breaker.state(40.0) == "half_open"


def test_one_probe_at_a_time() -> None:
    breaker = opened(at=10.0)
    assert breaker.allow(40.0)
    assert breaker.probe_in_flight
    assert not breaker.allow(40.0)
    assert not breaker.allow(55.0)


def test_probe_failure_reopens_with_a_fresh_window() -> None:
    breaker = opened(at=10.0)
    assert breaker.allow(45.0)
    breaker.record_failure(47.0)
    assert breaker.opened_at == 47.0
    assert breaker.state(47.0) == "open"
    assert not breaker.allow(76.999)
    assert breaker.state(76.999) == "open"
    assert breaker.state(77.0) == "half_open"
    assert breaker.allow(77.0)  # the reopening freed the probe slot


def test_m_successes_close() -> None:
    breaker = opened(at=10.0)
    assert breaker.allow(40.0)
    breaker.record_success(41.0)
    assert breaker.state(41.0) == "half_open"
    assert breaker.consecutive_successes == 1
    assert breaker.allow(41.0)  # the first probe's verdict freed the slot
    assert not breaker.allow(41.0)
    breaker.record_success(42.0)
    assert breaker.state(42.0) == "closed"
    assert breaker.opened_at is None
    assert breaker.consecutive_failures == 0
    assert breaker.consecutive_successes == 0
    assert breaker.allow(42.0)
    assert breaker.allow(42.0)


def test_a_failure_between_half_open_successes_reopens() -> None:
    breaker = opened(at=10.0)
    assert breaker.allow(40.0)
    breaker.record_success(41.0)
    assert breaker.allow(42.0)
    breaker.record_failure(43.0)
    assert breaker.state(43.0) == "open"
    assert breaker.consecutive_successes == 0
    assert breaker.state(73.0) == "half_open"
    assert breaker.allow(73.0)
    breaker.record_success(74.0)
    assert breaker.state(74.0) == "half_open"  # the count started over


def test_release_probe_lets_the_next_probe_go() -> None:
    breaker = opened(at=10.0)
    assert breaker.allow(40.0)
    assert not breaker.allow(41.0)
    breaker.release_probe()
    assert not breaker.probe_in_flight
    assert breaker.state(41.0) == "half_open"
    assert breaker.consecutive_successes == 0
    assert breaker.allow(41.0)


def test_verdicts_while_open_are_ignored() -> None:
    breaker = opened(at=10.0)
    breaker.record_failure(20.0)  # a straggler admitted before the opening
    assert breaker.opened_at == 10.0
    breaker.record_success(25.0)
    assert breaker.state(25.0) == "open"
    assert breaker.state(40.0) == "half_open"


def test_snapshot() -> None:
    breaker = CircuitBreaker(failures=2, successes=1, open_for=5.0)
    breaker.record_failure(1.0)
    assert breaker.snapshot(1.0) == {
        "state": "closed",
        "consecutive_failures": 1,
        "consecutive_successes": 0,
        "seconds_until_half_open": None,
        "probe_in_flight": False,
    }
    breaker.record_failure(2.0)
    assert breaker.snapshot(3.5)["seconds_until_half_open"] == 3.5
    assert breaker.snapshot(3.5)["state"] == "open"
    assert breaker.allow(7.0)
    assert breaker.snapshot(7.0) == {
        "state": "half_open",
        "consecutive_failures": 2,
        "consecutive_successes": 0,
        "seconds_until_half_open": None,
        "probe_in_flight": True,
    }
    breaker.record_success(8.0)
    assert breaker.snapshot(8.0)["state"] == "closed"


@pytest.mark.parametrize(
    ("failures", "successes", "open_for"), [(0, 1, 1.0), (1, 0, 1.0), (1, 1, 0.0)]
)
def test_rejects_bad_settings(failures: int, successes: int, open_for: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        CircuitBreaker(failures, successes, open_for)


def test_configure_keeps_the_state_and_applies_the_new_thresholds() -> None:
    breaker = CircuitBreaker(failures=5, successes=2, open_for=30.0)
    breaker.record_failure(1.0)
    breaker.configure(failures=2, successes=1, open_for=10.0)
    assert breaker.state(1.0) == "closed"  # a lower threshold alone opens nothing
    assert breaker.consecutive_failures == 1
    breaker.record_failure(2.0)
    assert breaker.state(2.0) == "open"  # 2 in a row: the new threshold, not the old 5
    assert breaker.state(11.999) == "open"
    assert breaker.state(12.0) == "half_open"  # the new open_for, from when it opened
    assert breaker.allow(12.0)
    breaker.record_success(12.0)
    assert breaker.state(12.0) == "closed"  # one success is enough now


def test_configure_moves_the_half_open_time_of_an_open_breaker() -> None:
    breaker = opened(at=10.0)  # open_for 30 s: half-open at 40
    breaker.configure(failures=3, successes=2, open_for=5.0)
    assert breaker.state(14.999) == "open"
    assert breaker.state(15.0) == "half_open"


def test_configure_rejects_bad_settings() -> None:
    breaker = CircuitBreaker(failures=3, successes=2, open_for=30.0)
    with pytest.raises(ValueError, match="open_for"):
        breaker.configure(3, 2, 0.0)
    assert breaker.open_for == 30.0


def test_failures_of_one_incident_count_once() -> None:
    """The streams of one lost HTTP/2 connection fail together: one failure."""
    breaker = CircuitBreaker(failures=3, successes=2, open_for=30.0)
    lost_connection = object()
    for _ in range(50):
        breaker.record_failure(1.0, lost_connection)
    assert breaker.state(1.0) == "closed"
    assert breaker.consecutive_failures == 1
    breaker.record_failure(2.0, object())  # another connection lost
    breaker.record_failure(3.0)  # and a failure of its own
    assert breaker.state(3.0) == "open"
