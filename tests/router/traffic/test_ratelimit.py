"""Rate windows on a fake clock (exact edges and Retry-After), and provider headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters import provider_kinds
from adapters._ratelimit_headers import (
    UpstreamLimits,
    parse_anthropic_headers,
    parse_go_duration,
    parse_openai_headers,
    parse_rfc3339,
)
from router.traffic._targetlimits import TargetLimited, TargetLimits
from router.traffic._tokens import estimate_tokens
from router.traffic._window import KeyUsage, RateLimiter
from rules import parse_config, parse_target


class FakeClock:
    """A mutable float the limiter reads as its clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(rpm: int | None = None, tpm: int | None = None) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    rl = RateLimiter(clock)
    rl.configure("t", rpm, tpm)
    return rl, clock


def test_the_11th_request_waits_for_the_first_to_leave() -> None:
    rl, clock = limiter(rpm=10)
    for i in range(10):
        clock.now = 1000.0 + i  # one request a second, from t = 1000
        assert rl.acquire("t", 0) is None
    clock.now = 1012.5
    assert rl.acquire("t", 0) == 47.5  # the first leaves at 1060.0
    assert rl.blocked_for("t") == 47.5
    clock.now = 1059.75
    assert rl.acquire("t", 0) == 0.25
    clock.now = 1060.0  # exactly t + 60: the first has left
    assert rl.blocked_for("t") is None
    assert rl.acquire("t", 0) is None
    assert rl.acquire("t", 0) == 1.0  # full again: the second (t = 1001) leaves next


def test_refusal_takes_nothing() -> None:
    rl, _ = limiter(rpm=2, tpm=100)
    assert rl.acquire("t", 60) is None
    assert rl.acquire("t", 60) == 60.0  # tokens do not fit: the request is not counted
    assert rl.acquire("t", 40) is None  # so the second request still fits
    assert rl.snapshot()["t"] == KeyUsage(2, 100, 2, 100, None)


def test_tpm_with_large_token_counts() -> None:
    rl, clock = limiter(tpm=2_000_000)
    for i in range(19):
        clock.now = 1000.0 + i
        assert rl.acquire("t", 100_000) is None
    clock.now = 1030.0
    assert rl.acquire("t", 100_000) is None  # exactly 2,000,000
    assert rl.acquire("t", 1) == 30.0  # the t=1000 entry must leave
    # 250,000 more needs the three oldest (t = 1000, 1001, 1002) gone
    assert rl.acquire("t", 250_000) == 32.0
    clock.now = 1061.0
    assert rl.acquire("t", 250_000) == 1.0  # only two have left
    clock.now = 1062.0
    assert rl.acquire("t", 250_000) is None
    assert rl.snapshot()["t"] == KeyUsage(None, 2_000_000, 18, 1_950_000, None)


def test_a_request_above_the_whole_tpm_runs_alone() -> None:
    rl, clock = limiter(tpm=1000)
    assert rl.acquire("t", 10) is None
    assert rl.acquire("t", 5000) == 60.0  # once the window is empty
    clock.now = 1060.0
    assert rl.acquire("t", 5000) is None
    assert rl.acquire("t", 1) == 60.0


def test_reconcile_up_and_down() -> None:
    rl, clock = limiter(tpm=1000)
    assert rl.acquire("t", 300) is None
    clock.now = 1010.0
    assert rl.acquire("t", 300) is None
    rl.reconcile("t", estimated=300, actual=100)  # the newest (t = 1010) used less
    assert rl.snapshot()["t"].tokens == 400
    clock.now = 1020.0
    rl.reconcile("t", estimated=300, actual=700)  # the older one used more, at t = 1000
    assert rl.snapshot()["t"].tokens == 800
    assert rl.acquire("t", 300) == 40.0  # the t = 1000 entry (700) must leave
    clock.now = 1060.0
    assert rl.snapshot()["t"].tokens == 100
    assert rl.acquire("t", 300) is None


def test_reconcile_after_the_entry_left() -> None:
    rl, clock = limiter(tpm=1000)
    assert rl.acquire("t", 300) is None
    clock.now = 1090.0  # a long stream: its entry left the window at 1060
    rl.reconcile("t", estimated=300, actual=200)  # nothing to give back
    assert rl.snapshot()["t"].tokens == 0
    rl.reconcile("t", estimated=300, actual=500)  # the surplus is charged now
    assert rl.snapshot()["t"] == KeyUsage(None, 1000, 0, 200, None)
    clock.now = 1150.0
    assert rl.snapshot()["t"].tokens == 0


def test_reconcile_never_below_zero() -> None:
    rl, _ = limiter(tpm=1000)
    assert rl.acquire("t", 300) is None
    rl.reconcile("t", estimated=300, actual=-50)
    assert rl.snapshot()["t"].tokens == 0


def test_reconciled_entries_are_not_matched_again() -> None:
    rl, _ = limiter(tpm=10_000)
    assert rl.acquire("t", 100) is None
    assert rl.acquire("t", 50) is None
    rl.reconcile("t", estimated=100, actual=50)
    rl.release("t", 50)  # the second request, not the reconciled first
    assert rl.snapshot()["t"] == KeyUsage(None, 10_000, 1, 50, None)


def test_release_gives_back_request_and_tokens() -> None:
    rl, clock = limiter(rpm=2, tpm=1000)
    assert rl.acquire("t", 400) is None
    clock.now = 1005.0
    assert rl.acquire("t", 600) is None
    assert rl.acquire("t", 1) == 55.0
    rl.release("t", 600)
    assert rl.snapshot()["t"] == KeyUsage(2, 1000, 1, 400, None)
    assert rl.acquire("t", 600) is None
    rl.release("t", 12345)  # no such entry: nothing happens
    assert rl.snapshot()["t"] == KeyUsage(2, 1000, 2, 1000, None)


def test_reconfigure_keeps_usage() -> None:
    rl, _ = limiter(rpm=10, tpm=1000)
    for _ in range(5):
        assert rl.acquire("t", 100) is None
    rl.configure("t", 10, 1000)  # idempotent
    assert rl.snapshot()["t"] == KeyUsage(10, 1000, 5, 500, None)
    rl.configure("t", 5, None)
    assert rl.snapshot()["t"] == KeyUsage(5, None, 5, 500, None)
    assert rl.acquire("t", 0) == 60.0
    rl.configure("t", 20, 400)  # already over the new tpm: wait for enough to leave
    assert rl.acquire("t", 100) == 60.0
    rl.configure("t", None, None)
    assert rl.acquire("t", 10**9) is None


def test_forget_drops_usage_limits_and_block() -> None:
    rl, _ = limiter(rpm=1)
    assert rl.acquire("t", 10) is None
    rl.note_upstream("t", 0, None, 30.0)
    assert rl.blocked_for("t") == 60.0
    rl.forget("t")
    assert rl.blocked_for("t") is None
    assert rl.acquire("t", 10) is None
    assert rl.snapshot()["t"] == KeyUsage(None, None, 1, 10, None)


def test_a_removed_limit_is_forgotten_and_a_kept_one_keeps_its_window() -> None:
    clock = FakeClock()
    limits = TargetLimits(RateLimiter(clock))
    providers = '[providers.a]\nkind = "openai"\n{a}\n[providers.b]\nkind = "openai"\n{b}\n'
    routes = '[routes.r]\nfallback = ["a:m", "b:m"]\n'
    limited = "limits = { rpm = 1 }"
    limits.configure(
        parse_config(providers.format(a=limited, b=limited) + routes, kinds=provider_kinds())
    )
    # a's answers carry rate-limit headers (plenty left): a's window is now known both ways
    limits.observe(
        "a",
        "openai",
        [("x-ratelimit-remaining-requests", "50"), ("x-ratelimit-reset-requests", "9s")],
    )
    for target in ("a:m", "b:m"):
        limits.take(parse_target(target), 10)
        with pytest.raises(TargetLimited):
            limits.take(parse_target(target), 10)
    limits.configure(
        parse_config(providers.format(a="", b=limited) + routes, kinds=provider_kinds())
    )
    assert limits.take(parse_target("a:m"), 10) == []  # a is not limited any more
    with pytest.raises(TargetLimited):
        limits.take(parse_target("b:m"), 10)  # b's window still holds its request
    clock.now += 60.0
    assert limits.take(parse_target("b:m"), 10) == ["b"]
    # Headers seen after the removal are honoured again: the provider's own word.
    limits.observe(
        "a",
        "openai",
        [("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "5s")],
    )
    with pytest.raises(TargetLimited):
        limits.take(parse_target("a:m"), 10)


def test_a_removed_provider_is_forgotten() -> None:
    limits = TargetLimits(RateLimiter(FakeClock()))
    limits.configure(
        parse_config(
            '[providers.a]\nkind = "openai"\n[routes.r]\nfallback = ["a:m"]\n',
            kinds=provider_kinds(),
        )
    )
    limits.observe(
        "a",
        "openai",
        [("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "5s")],
    )
    assert "a" in limits.limiter.snapshot()
    limits.configure(
        parse_config(
            '[providers.b]\nkind = "openai"\n[routes.r]\nfallback = ["b:m"]\n',
            kinds=provider_kinds(),
        )
    )
    assert "a" not in limits.limiter.snapshot()


@pytest.mark.parametrize(("rpm", "tpm"), [(0, None), (None, 0), (-1, 5)])
def test_limits_below_one_are_refused(rpm: int | None, tpm: int | None) -> None:
    rl = RateLimiter(FakeClock())
    with pytest.raises(ValueError, match="at least 1"):
        rl.configure("t", rpm, tpm)


def test_negative_tokens_are_refused() -> None:
    rl, _ = limiter(rpm=1)
    with pytest.raises(ValueError, match="negative"):
        rl.acquire("t", -1)


def test_upstream_zero_remaining_blocks_until_reset() -> None:
    rl, clock = limiter(rpm=100, tpm=100_000)
    rl.note_upstream("t", remaining_requests=0, remaining_tokens=50_000, reset_after=2.5)
    assert rl.blocked_for("t") == 2.5
    assert rl.acquire("t", 10) == 2.5
    assert rl.snapshot()["t"] == KeyUsage(100, 100_000, 0, 0, 1002.5)
    clock.now = 1002.0
    assert rl.acquire("t", 10) == 0.5
    clock.now = 1002.5
    assert rl.blocked_for("t") is None
    assert rl.acquire("t", 10) is None
    assert rl.snapshot()["t"].blocked_until is None


def test_upstream_low_remaining_blocks() -> None:
    rl, clock = limiter(rpm=100, tpm=100_000)
    rl.note_upstream("t", remaining_requests=5, remaining_tokens=5000, reset_after=3.0)
    assert rl.blocked_for("t") is None  # exactly 5%: not under it
    rl.note_upstream("t", remaining_requests=50, remaining_tokens=4999, reset_after=3.0)
    assert rl.blocked_for("t") == 3.0
    clock.now = 1001.0
    rl.note_upstream("t", remaining_requests=4, remaining_tokens=None, reset_after=1.0)
    assert rl.blocked_for("t") == 2.0  # blocks only extend
    rl.note_upstream("t", remaining_requests=90, remaining_tokens=90_000, reset_after=9.0)
    assert rl.blocked_for("t") == 2.0  # a healthy reading does not clear it either
    rl.note_upstream("t", remaining_requests=0, remaining_tokens=None, reset_after=4.0)
    assert rl.blocked_for("t") == 4.0


def test_upstream_without_reset_or_config() -> None:
    rl, _ = limiter()
    rl.note_upstream("t", remaining_requests=0, remaining_tokens=0, reset_after=None)
    assert rl.blocked_for("t") is None  # no trustworthy time to give
    rl.note_upstream("t", remaining_requests=1, remaining_tokens=1, reset_after=5.0)
    assert rl.blocked_for("t") is None  # low, but nothing configured to compare with
    rl.note_upstream("other", remaining_requests=None, remaining_tokens=0, reset_after=5.0)
    assert rl.blocked_for("other") == 5.0  # an unconfigured key is still blocked


def test_a_blocked_window_waits_for_the_later_of_both() -> None:
    rl, _ = limiter(rpm=1)
    assert rl.acquire("t", 0) is None
    rl.note_upstream("t", remaining_requests=0, remaining_tokens=None, reset_after=10.0)
    assert rl.acquire("t", 0) == 60.0
    rl.note_upstream("t", remaining_requests=0, remaining_tokens=None, reset_after=90.0)
    assert rl.acquire("t", 0) == 90.0


def test_blocked_for_takes_nothing_and_knows_no_unknown_key() -> None:
    rl, _ = limiter(rpm=1, tpm=100)
    assert rl.blocked_for("nobody") is None
    assert "nobody" not in rl.snapshot()
    assert rl.blocked_for("t", tokens=100) is None
    assert rl.blocked_for("t", tokens=101) is None  # above the whole tpm: fits when empty
    assert rl.snapshot()["t"] == KeyUsage(1, 100, 0, 0, None)
    assert rl.acquire("t", 99) is None
    assert rl.blocked_for("t") == 60.0


def test_keys_are_independent() -> None:
    clock = FakeClock()
    rl = RateLimiter(clock)
    rl.configure("a", 1, None)
    rl.configure("b", 1, None)
    assert rl.acquire("a", 5) is None
    assert rl.acquire("a", 5) == 60.0
    assert rl.acquire("b", 5) is None
    rl.note_upstream("b", remaining_requests=0, remaining_tokens=None, reset_after=100.0)
    assert rl.acquire("unconfigured", 10**6) is None  # no limits, but usage is counted
    clock.now = 1060.0
    assert rl.acquire("a", 5) is None
    assert rl.snapshot() == {
        "a": KeyUsage(1, None, 1, 5, None),
        "b": KeyUsage(1, None, 0, 0, 1100.0),
        "unconfigured": KeyUsage(None, None, 0, 0, None),
    }


@pytest.mark.parametrize(
    ("prompt_chars", "max_tokens", "expected"),
    [(0, None, 256), (4000, None, 1256), (4001, 100, 1101), (3, 0, 1), (-5, -1, 0)],
)
def test_estimate_tokens(prompt_chars: int, max_tokens: int | None, expected: int) -> None:
    assert estimate_tokens(prompt_chars, max_tokens) == expected


def test_estimate_tokens_default_output() -> None:
    assert estimate_tokens(40, None, default_output=1000) == 1010


# -- headers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("7.66s", 7.66),
        ("0", 0.0),
        ("0s", 0.0),
        ("1m30.5s", 90.5),
        ("500us", 0.0005),
        ("2µs", 2e-6),
        (" 3s ", 3.0),
        ("", None),
        ("1", None),
        ("-1s", None),
        ("1d", None),
        ("soon", None),
        ("1s garbage", None),
    ],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert parse_go_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2025-03-01T12:00:07Z", 7.0),
        ("2025-03-01T12:00:07.250Z", 7.25),
        ("2025-03-01T12:01:00.123456789Z", 60.123456),
        ("2025-03-01T13:00:30+01:00", 30.0),
        ("2025-03-01t12:00:01z", 1.0),
        ("2025-03-01T11:59:00Z", 0.0),  # already passed: floor 0
        ("2025-03-01T12:00:07", None),  # no offset: not RFC 3339
        ("tomorrow", None),
    ],
)
def test_rfc3339(text: str, seconds: float | None) -> None:
    assert parse_rfc3339(text, NOW) == (pytest.approx(seconds) if seconds is not None else None)


OPENAI = [
    ("x-request-id", "req_123"),
    ("x-ratelimit-limit-requests", "60"),
    ("x-ratelimit-limit-tokens", "150000"),
    ("x-ratelimit-remaining-requests", "59"),
    ("x-ratelimit-remaining-tokens", "149984"),
    ("x-ratelimit-reset-requests", "1s"),
    ("x-ratelimit-reset-tokens", "6m0s"),
]


def test_openai_golden() -> None:
    # requests have the smaller share left (59/60 < 149984/150000): their reset counts
    assert parse_openai_headers(OPENAI) == UpstreamLimits(59, 149984, 1.0)


def test_openai_exhausted_dimension_picks_its_reset() -> None:
    headers = [
        ("X-RateLimit-Remaining-Requests", "30"),
        ("X-RateLimit-Remaining-Tokens", "0"),
        ("X-RateLimit-Reset-Requests", "1s"),
        ("X-RateLimit-Reset-Tokens", "20ms"),
    ]
    assert parse_openai_headers(headers) == UpstreamLimits(30, 0, 0.02)
    headers[0] = ("x-ratelimit-remaining-requests", "0")
    assert parse_openai_headers(headers) == UpstreamLimits(0, 0, 1.0)  # both out: the later


def test_openai_without_limits_takes_the_soonest_reset() -> None:
    headers = [
        ("x-ratelimit-remaining-requests", "3"),
        ("x-ratelimit-remaining-tokens", "1000"),
        ("x-ratelimit-reset-requests", "1h2m3.5s"),
        ("x-ratelimit-reset-tokens", "6m0s"),
    ]
    assert parse_openai_headers(headers) == UpstreamLimits(3, 1000, 360.0)


def test_openai_scarcer_share_decides() -> None:
    headers = [*OPENAI[1:3], *OPENAI[5:]]
    headers += [("x-ratelimit-remaining-requests", "50"), ("x-ratelimit-remaining-tokens", "1500")]
    assert parse_openai_headers(headers) == UpstreamLimits(50, 1500, 360.0)


def test_openai_partial_and_garbage() -> None:
    assert parse_openai_headers([]) is None
    assert parse_openai_headers([("content-type", "application/json")]) is None
    assert (
        parse_openai_headers(
            [
                ("x-ratelimit-remaining-requests", "many"),
                ("x-ratelimit-remaining-tokens", "-3"),
                ("x-ratelimit-reset-requests", "whenever"),
            ]
        )
        is None
    )
    assert parse_openai_headers(
        [("x-ratelimit-remaining-tokens", "12"), ("x-ratelimit-reset-requests", "bad")]
    ) == UpstreamLimits(None, 12, None)
    assert parse_openai_headers(
        [("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "2s")]
    ) == UpstreamLimits(0, None, 2.0)
    assert parse_openai_headers([("x-ratelimit-reset-tokens", "3s")]) == UpstreamLimits(
        None, None, 3.0
    )


ANTHROPIC = [
    ("request-id", "req_1"),
    ("anthropic-ratelimit-requests-limit", "50"),
    ("anthropic-ratelimit-requests-remaining", "49"),
    ("anthropic-ratelimit-requests-reset", "2025-03-01T12:00:01Z"),
    ("anthropic-ratelimit-tokens-limit", "100000"),
    ("anthropic-ratelimit-tokens-remaining", "1000"),
    ("anthropic-ratelimit-tokens-reset", "2025-03-01T12:00:42Z"),
    ("anthropic-ratelimit-input-tokens-limit", "80000"),
    ("anthropic-ratelimit-input-tokens-remaining", "500"),
    ("anthropic-ratelimit-input-tokens-reset", "2025-03-01T12:00:50Z"),
]


def test_anthropic_golden() -> None:
    # the combined tokens-* headers win; tokens have the smaller share (1%): their reset
    assert parse_anthropic_headers(ANTHROPIC, NOW) == UpstreamLimits(49, 1000, 42.0)


def test_anthropic_input_output_take_the_smaller() -> None:
    headers = [
        ("anthropic-ratelimit-requests-remaining", "10"),
        ("anthropic-ratelimit-requests-reset", "2025-03-01T12:00:01Z"),
        ("anthropic-ratelimit-input-tokens-remaining", "40000"),
        ("anthropic-ratelimit-input-tokens-reset", "2025-03-01T12:00:30Z"),
        ("anthropic-ratelimit-output-tokens-remaining", "0"),
        ("anthropic-ratelimit-output-tokens-reset", "2025-03-01T12:00:12.5Z"),
    ]
    assert parse_anthropic_headers(headers, NOW) == UpstreamLimits(10, 0, 12.5)


def test_anthropic_partial_and_garbage() -> None:
    assert parse_anthropic_headers([], NOW) is None
    assert (
        parse_anthropic_headers(
            [
                ("anthropic-ratelimit-requests-remaining", "x"),
                ("anthropic-ratelimit-requests-reset", "not a time"),
            ],
            NOW,
        )
        is None
    )
    assert parse_anthropic_headers(
        [
            ("Anthropic-RateLimit-Requests-Remaining", "0"),
            ("Anthropic-RateLimit-Requests-Reset", "2025-03-01T11:00:00Z"),  # past
        ],
        NOW,
    ) == UpstreamLimits(0, None, 0.0)


def test_headers_feed_the_limiter() -> None:
    rl, _ = limiter(rpm=60, tpm=150_000)
    limits = parse_openai_headers(
        [
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-remaining-tokens", "149000"),
            ("x-ratelimit-reset-requests", "1.5s"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ]
    )
    assert limits is not None
    rl.note_upstream("t", limits.remaining_requests, limits.remaining_tokens, limits.reset_after)
    assert rl.blocked_for("t") == 1.5  # the requests' reset, not the tokens' six minutes
