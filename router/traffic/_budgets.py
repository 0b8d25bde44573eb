"""How much each client key may still spend: its spend in the current UTC day and
month against its ``budget``.

Pure: no I/O, and `Budgets` reads the wall clock only through the callable it is given.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from rules import Budget

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["BudgetState", "Budgets", "Reservation"]

_Day = tuple[int, int, int]
_Month = tuple[int, int]


@attrs.frozen
class BudgetState:
    """One key's spending, as `Budgets.snapshot` reports it.

    Attributes:
        budget: The key's budget, or None.
        spent_day: USD spent in the current UTC day.
        spent_month: USD spent in the current UTC month.
        remaining: USD left in the budget's period (None: no budget).
        resets_in: Seconds until the budget's period ends (None: no budget).
        reserved: USD held by the key's requests in flight (their worst-case cost).
    """

    budget: Budget | None
    spent_day: float
    spent_month: float
    remaining: float | None
    resets_in: float | None
    reserved: float = 0.0


@attrs.define
class _Held:
    count: int = 0  # reservations outstanding
    usd: float = 0.0


@attrs.define(eq=False)
class Reservation:
    """One request's hold on its key's budget (`Budgets.reserve`): replaced by what the
    request cost (:meth:`settle`), or given back (:meth:`release`). Either happens once;
    later calls do nothing, so a ``finally: release()`` after a settle is safe."""

    budgets: Budgets
    key: str
    usd: float
    done: bool = False

    def settle(self, cost: float | None) -> None:
        """Replace the hold by ``cost`` (None: not priced, nothing charged)."""
        if self.done:
            return
        self.release()
        if cost is not None:
            self.budgets.charge(self.key, cost)

    def release(self) -> None:
        """Give the hold back (the request failed, or was cancelled)."""
        if not self.done:
            self.done = True
            self.budgets._unhold(self.key, self.usd)


@attrs.define
class _Spend:
    day: _Day = (0, 0, 0)
    day_usd: float = 0.0
    month: _Month = (0, 0)
    month_usd: float = 0.0


class Budgets:
    """Spend per client key in the current calendar period, against its budget.

    Periods are UTC calendar periods: a ``"day"`` budget covers one UTC date, a
    ``"month"`` budget one UTC year-month; spend starts again at zero when the period
    rolls over. Each key's spend is kept for both its day and its month, so a key
    charged before it had a budget, or whose budget changes from ``day`` to ``month`` on
    reload, is counted in full. Should the clock step back across a period's edge, the
    later period is kept (a clock step does not refill a budget).

    Spend is kept in memory; :meth:`dump` and :meth:`load` carry it across restarts
    (``server.state_file``).

    A request is let through while anything is left once the requests in flight are
    counted at their worst case (`exhausted` is false), and holds its own worst case
    (:meth:`reserve`) until it is charged what it really cost. So the requests in flight
    together can overshoot a budget by at most the one let in last (as long as none
    costs more than its worst case).

    Keys are client key names (``[keys.NAME]``), never the secrets.

    Args:
        clock: The wall clock, seconds since the epoch.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._budgets: dict[str, Budget] = {}
        self._spend: dict[str, _Spend] = {}
        self._held: dict[str, _Held] = {}
        #: Called after every charge (the state file's writer listens), never with an
        #: argument; it must not raise.
        self.on_change: Callable[[], None] | None = None
        #: Called with each charge's key and USD (shared state adds it to Redis's count).
        self.on_charge: Callable[[str, float], None] | None = None

    def configure(self, key: str, budget: Budget | None) -> None:
        """Set ``key``'s budget (None: no budget). What it spent so far is kept."""
        if budget is None:
            self._budgets.pop(key, None)
        else:
            self._budgets[key] = budget

    def budget(self, key: str) -> Budget | None:
        """``key``'s budget, or None."""
        return self._budgets.get(key)

    def charge(self, key: str, usd: float) -> None:
        """Add ``usd`` to ``key``'s spend in the current day and month.

        Keys without a budget are counted too (for `snapshot`, and in case they get one).

        Raises:
            ValueError: a negative or non-finite amount.
        """
        if not math.isfinite(usd) or usd < 0:
            raise ValueError(f"a charge must be a finite amount of at least 0, got {usd!r}")
        spend = self._current(key, self._clock(), keep=True)
        spend.day_usd += usd
        spend.month_usd += usd
        if self.on_charge is not None:
            self.on_charge(key, usd)
        if self.on_change is not None and usd:
            self.on_change()

    def observe(self, key: str, day_usd: float, month_usd: float) -> None:
        """``key``'s spend in the current day and month as shared state counts it
        (every daemon's charges): this copy goes on from it if the shared state is lost."""
        spend = self._current(key, self._clock(), keep=True)
        if (spend.day_usd, spend.month_usd) != (day_usd, month_usd):
            spend.day_usd, spend.month_usd = day_usd, month_usd
            if self.on_change is not None:
                self.on_change()

    def reserve(self, key: str, usd: float) -> Reservation:
        """Hold ``usd`` of ``key``'s budget for a request in flight, until the
        reservation is settled or released.

        Raises:
            ValueError: a negative or non-finite amount.
        """
        if not math.isfinite(usd) or usd < 0:
            raise ValueError(f"a reservation must be a finite amount of at least 0, got {usd!r}")
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held()
        held.count += 1
        held.usd += usd
        return Reservation(self, key, usd)

    def reserved(self, key: str) -> float:
        """USD held by ``key``'s requests in flight."""
        held = self._held.get(key)
        return 0.0 if held is None else held.usd

    def _unhold(self, key: str, usd: float) -> None:
        held = self._held[key]
        held.count -= 1
        held.usd -= usd
        if held.count == 0:  # exactly zero again: no float residue of many adds
            del self._held[key]

    def spent(self, key: str) -> float:
        """USD ``key`` spent in its budget's current period (the UTC day without one)."""
        return self._spent(key, self._current(key, self._clock()))

    def remaining(self, key: str) -> float | None:
        """USD ``key`` may still spend in the current period, never below 0; None when
        it has no budget."""
        return self._remaining(key, self._current(key, self._clock()))

    def exhausted(self, key: str) -> bool:
        """``key`` has a budget and nothing is left of it once what its requests in
        flight hold is set aside."""
        remaining = self.remaining(key)
        return remaining is not None and remaining - self.reserved(key) <= 0

    def resets_in(self, key: str) -> float | None:
        """Seconds until ``key``'s budget period rolls over (for ``Retry-After``); None
        when it has no budget."""
        now = self._clock()
        return self._resets_in(key, self._current(key, now), now)

    def snapshot(self) -> dict[str, BudgetState]:
        """Every key with a budget or a charge, sorted by key, all at one reading of the
        clock."""
        now = self._clock()
        states = {}
        for key in sorted(self._budgets.keys() | self._spend.keys() | self._held.keys()):
            spend = self._current(key, now)
            states[key] = BudgetState(
                budget=self._budgets.get(key),
                spent_day=spend.day_usd,
                spent_month=spend.month_usd,
                remaining=self._remaining(key, spend),
                resets_in=self._resets_in(key, spend, now),
                reserved=self.reserved(key),
            )
        return states

    def _spent(self, key: str, spend: _Spend) -> float:
        budget = self._budgets.get(key)
        return spend.month_usd if budget is not None and budget.per == "month" else spend.day_usd

    def _remaining(self, key: str, spend: _Spend) -> float | None:
        budget = self._budgets.get(key)
        if budget is None:
            return None
        return max(0.0, budget.usd - self._spent(key, spend))

    def _resets_in(self, key: str, spend: _Spend, now: float) -> float | None:
        budget = self._budgets.get(key)
        if budget is None:
            return None
        if budget.per == "day":
            year, month, day = spend.day
            end = datetime(year, month, day, tzinfo=UTC).timestamp() + 86_400
        else:
            year, month = spend.month
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            end = datetime(year, month, 1, tzinfo=UTC).timestamp()
        return max(0.0, end - now)

    def dump(self) -> dict[str, dict[str, Any]]:
        """The spend of every key, as plain JSON values (to keep across restarts)."""
        return {
            key: {
                "day": list(s.day),
                "day_usd": s.day_usd,
                "month": list(s.month),
                "month_usd": s.month_usd,
            }
            for key, s in self._spend.items()
        }

    def load(self, data: Mapping[str, Any]) -> None:
        """Spend saved by :meth:`dump`. Periods that have rolled over since count as
        zero, as always.

        Raises:
            ValueError: an entry does not parse (nothing is loaded then): a damaged file
                must not pass for a budget with nothing spent.
        """
        loaded = {}
        for key, raw in data.items():
            try:
                day = (int(raw["day"][0]), int(raw["day"][1]), int(raw["day"][2]))
                month = (int(raw["month"][0]), int(raw["month"][1]))
                day_usd, month_usd = float(raw["day_usd"]), float(raw["month_usd"])
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise ValueError(f"the entry of key {key!r} does not parse ({exc!r})") from None
            if not (min(day_usd, month_usd) >= 0 and math.isfinite(day_usd + month_usd)):
                raise ValueError(f"the entry of key {key!r} has a negative or infinite spend")
            loaded[str(key)] = _Spend(day, day_usd, month, month_usd)
        self._spend.update(loaded)

    def periods(self) -> tuple[float, float, float]:
        """Now, and when the current UTC day and month began (seconds since the epoch):
        what :meth:`recover` is computed over."""
        now = self._clock()
        when = datetime.fromtimestamp(now, tz=UTC)
        day = datetime(when.year, when.month, when.day, tzinfo=UTC).timestamp()
        return now, day, datetime(when.year, when.month, 1, tzinfo=UTC).timestamp()

    def recover(self, spend: Mapping[str, tuple[float, float]], at: float) -> None:
        """Spend counted elsewhere (the usage ledger) in the day and month that ``at``
        (from :meth:`periods`) falls in: each key keeps the larger of its own count and
        this one, so neither a state file older than the ledger nor a ledger that
        dropped rows can refill a budget. Periods over since ``at`` are left alone.
        """
        now = self._clock()
        when = datetime.fromtimestamp(at, tz=UTC)
        day, month = (when.year, when.month, when.day), (when.year, when.month)
        changed = False
        for key, (day_usd, month_usd) in spend.items():
            if not (min(day_usd, month_usd) >= 0 and math.isfinite(day_usd + month_usd)):
                continue
            record = self._current(key, now, keep=True)
            if record.day == day and day_usd > record.day_usd:
                record.day_usd, changed = day_usd, True
            if record.month == month and month_usd > record.month_usd:
                record.month_usd, changed = month_usd, True
        if changed and self.on_change is not None:
            self.on_change()

    def _current(self, key: str, now: float, *, keep: bool = False) -> _Spend:
        """``key``'s spend, rolled over to the periods ``now`` falls in; a key never
        charged gets a zero record, stored only when ``keep``."""
        when = datetime.fromtimestamp(now, tz=UTC)
        day: _Day = (when.year, when.month, when.day)
        month: _Month = (when.year, when.month)
        spend = self._spend.get(key)
        if spend is None:
            spend = _Spend(day=day, month=month)
            if keep:
                self._spend[key] = spend
        if day > spend.day:
            spend.day, spend.day_usd = day, 0.0
        if month > spend.month:
            spend.month, spend.month_usd = month, 0.0
        return spend
