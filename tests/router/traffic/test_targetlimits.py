"""A provider's token window: one request's estimate holds at most a quarter of it."""

from __future__ import annotations

import pytest

from adapters import provider_kinds
from router.traffic._targetlimits import HOLD_SHARE, TargetLimited, TargetLimits
from router.traffic._window import RateLimiter
from rules import parse_config, parse_target

M = parse_target("a:m")


def limits(now: list[float]) -> TargetLimits:
    target_limits = TargetLimits(RateLimiter(lambda: now[0]))
    target_limits.configure(
        parse_config(
            '[providers.a]\nkind = "openai"\nlimits = { tpm = 1000 }\n'
            '[routes.r]\nfallback = ["a:m"]\n',
            kinds=provider_kinds(),
        )
    )
    return target_limits


def held(target_limits: TargetLimits) -> int:
    return target_limits.limiter.snapshot()["a"].tokens


def test_a_huge_estimate_holds_a_quarter_and_leaves_the_rest() -> None:
    now = [0.0]
    tl = limits(now)
    assert HOLD_SHARE == 4
    huge = tl.take(M, 1_000_002)  # max_tokens = 1,000,000
    assert held(tl) == 250
    for _ in range(3):  # three more such requests fit beside it, then the window is full
        tl.take(M, 1_000_002)
    with pytest.raises(TargetLimited) as full:
        tl.take(M, 10)
    assert full.value.retry_after == 60.0
    tl.settle(huge, 1_000_002, 40)  # the first answered: it used 40 tokens
    assert held(tl) == 790
    tl.give_back(["a"], 1_000_002)  # one never reached the provider
    assert held(tl) == 540
    assert tl.take(M, 200) == ["a"]  # an ordinary request fits again, held in full
    assert held(tl) == 740


def test_an_estimate_within_a_quarter_is_held_whole() -> None:
    tl = limits([0.0])
    tl.take(M, 249)
    tl.take(M, 250)
    assert held(tl) == 499
