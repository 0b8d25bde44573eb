"""The rate windows by property, against a model written from the documented meaning.

The model keeps every charge ``(at, requests, tokens)`` forever and counts one while
``now < at + 60``. A request fits when one more request stays within rpm and its tokens
(at most tpm of them: a request larger than tpm waits for an empty window) stay within
tpm. When it does not fit, the wait is the time until the first moment enough charges
have left for it to fit, or until a block set by the provider's headers (when they show
none, or under 5% of the limit, left) ends, whichever is later. Times are quarter
seconds, so every sum is exact.
"""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from router.traffic._window import WINDOW, RateLimiter

KEY = "target"
RPM = st.none() | st.integers(1, 6)
TPM = st.none() | st.integers(1, 3000)
TOKENS = st.integers(0, 4000)
STEP = st.integers(0, 4 * 90).map(lambda quarters: quarters / 4)  # 0 to 90 s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@attrs.define
class Charge:
    at: float
    requests: int
    tokens: int
    settled: bool = False


@attrs.define
class Model:
    rpm: int | None
    tpm: int | None
    charges: list[Charge] = attrs.Factory(list)
    blocked_until: float | None = None  # the provider's own headers said: full until then

    def live(self, now: float) -> list[Charge]:
        return [c for c in self.charges if now < c.at + WINDOW]

    def fits(self, charges: list[Charge], tokens: int) -> bool:
        requests = sum(c.requests for c in charges)
        used = sum(c.tokens for c in charges)
        return (self.rpm is None or requests + 1 <= self.rpm) and (
            self.tpm is None or used + min(tokens, self.tpm) <= self.tpm
        )

    def wait(self, now: float, tokens: int) -> float | None:
        blocked = None
        if self.blocked_until is not None and now < self.blocked_until:
            blocked = self.blocked_until - now
        live = self.live(now)
        if self.fits(live, tokens):
            return blocked
        for leave in sorted({c.at + WINDOW for c in live}):
            if self.fits([c for c in live if leave < c.at + WINDOW], tokens):
                return max(leave - now, blocked or 0.0)
        raise AssertionError("an empty window always fits")

    def note(
        self, now: float, requests: int | None, tokens: int | None, reset: float | None
    ) -> None:
        def low(remaining: int | None, limit: int | None) -> bool:
            # 0 left, or under 5% of the limit configured here
            return remaining is not None and (
                remaining <= 0 or (limit is not None and remaining * 20 < limit)
            )

        if not (reset and reset > 0 and (low(requests, self.rpm) or low(tokens, self.tpm))):
            return
        if self.blocked_until is None or self.blocked_until < now + reset:  # only extends
            self.blocked_until = now + reset

    def newest(self, now: float, tokens: int) -> Charge | None:
        for charge in reversed(self.live(now)):
            if charge.requests and not charge.settled and charge.tokens == tokens:
                return charge
        return None


@given(st.data(), RPM, TPM)
def test_the_limiter_admits_exactly_what_fits_and_says_exactly_when(
    data: st.DataObject, rpm: int | None, tpm: int | None
) -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.configure(KEY, rpm, tpm)
    model = Model(rpm, tpm)
    admitted: list[int] = []  # estimates of the requests taken, for reconcile and release
    for _ in range(data.draw(st.integers(1, 30))):
        op = data.draw(
            st.sampled_from(["wait", "acquire", "acquire", "reconcile", "release", "note"])
        )
        now = clock.now
        if op == "wait":
            clock.now += data.draw(STEP)
        elif op == "acquire":
            tokens = data.draw(TOKENS)
            expected = model.wait(now, tokens)
            assert limiter.acquire(KEY, tokens) == expected
            if expected is None:
                model.charges.append(Charge(now, 1, tokens))
                admitted.append(tokens)
        elif admitted and op == "reconcile":
            estimated, actual = data.draw(st.sampled_from(admitted)), data.draw(TOKENS)
            limiter.reconcile(KEY, estimated, actual)
            charge = model.newest(now, estimated)
            if charge is not None:
                charge.tokens, charge.settled = actual, True
            elif actual > estimated:
                model.charges.append(Charge(now, 0, actual - estimated, settled=True))
        elif op == "note":  # the provider's rate-limit headers of an answer
            remaining = st.sampled_from([None, 0, 0, 1, 2, 5, 50, 200])
            left_requests, left_tokens = data.draw(remaining), data.draw(remaining)
            reset = data.draw(st.none() | STEP)
            limiter.note_upstream(KEY, left_requests, left_tokens, reset)
            model.note(now, left_requests, left_tokens, reset)
        elif admitted and op == "release":
            tokens = data.draw(st.sampled_from(admitted))
            limiter.release(KEY, tokens)
            charge = model.newest(now, tokens)
            if charge is not None:
                model.charges.remove(charge)
        usage = limiter.snapshot()[KEY]
        live = model.live(clock.now)
        assert (usage.requests, usage.tokens) == (
            sum(c.requests for c in live),
            sum(c.tokens for c in live),
        )


@given(RPM, TPM, st.lists(st.tuples(STEP, TOKENS), max_size=40))
def test_no_window_ever_admits_more_than_the_limits(
    rpm: int | None, tpm: int | None, arrivals: list[tuple[float, int]]
) -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.configure(KEY, rpm, tpm)
    taken: list[tuple[float, int]] = []
    for step, tokens in arrivals:
        clock.now += step / 8  # denser than the window, so that limits bind
        if limiter.acquire(KEY, tokens) is None:
            taken.append((clock.now, tokens))
    for end, _ in taken:  # every window that ends at an admission
        inside = [tokens for at, tokens in taken if end - WINDOW < at <= end]
        assert rpm is None or len(inside) <= rpm
        # Over tpm only by a request larger than tpm, admitted when the window held no
        # tokens: all the tokens are its own (requests of 0 tokens may share the window).
        assert tpm is None or sum(inside) <= tpm or sum(inside) == max(inside)


@given(RPM, TPM, st.lists(st.tuples(STEP, TOKENS), max_size=30), TOKENS)
def test_retry_after_is_exact(
    rpm: int | None, tpm: int | None, history: list[tuple[float, int]], tokens: int
) -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.configure(KEY, rpm, tpm)
    for step, earlier in history:
        clock.now += step / 8
        limiter.acquire(KEY, earlier)
    start = clock.now
    wait = limiter.acquire(KEY, tokens)
    if wait is None:
        return
    assert wait > 0
    clock.now = start + wait / 2  # refused all the way until the wait is over...
    assert limiter.blocked_for(KEY, tokens) == start + wait - clock.now
    clock.now = start + wait  # ...and admitted once it is
    assert limiter.blocked_for(KEY, tokens) is None
    assert limiter.acquire(KEY, tokens) is None


@given(st.lists(st.tuples(STEP, st.none() | STEP), max_size=12))
def test_a_provider_block_only_ever_extends(notes: list[tuple[float, float | None]]) -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.configure(KEY, 10, None)
    until: float | None = None
    for step, reset in notes:
        clock.now += step / 4
        limiter.note_upstream(KEY, 0, None, reset)  # none left: blocks for `reset`
        if reset and (until is None or clock.now + reset > until):
            until = clock.now + reset
        expected = until - clock.now if until is not None and clock.now < until else None
        assert limiter.blocked_for(KEY) == expected
