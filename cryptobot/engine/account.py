"""What the symbols of one run share: equity, the UTC day, the kill switch and the portfolio caps.

Each symbol has its own engine (engine/loop.py: its market, strategy state, open trade and
broker); every engine of a run holds the same `Account`. The account books every closed trade
into the one equity, rolls the day once for the run (the daily gate decision, the equity point
and the daily loss limit, counted over all symbols), engages the kill switch on every engine at
once, and answers the portfolio caps of `[portfolio]` before an entry is sent: open positions,
open risk (the open positions' stop losses as a fraction of equity) and entries per hour. A
refusal's reason starts with `portfolio:` and names the cap. A one-symbol run is a portfolio of
one: the same code (its one position at a time aside, open risk and entries per hour still
apply).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Protocol

from cryptobot.clock import DAY_MS, utc_day_start_ms
from cryptobot.config import Settings
from cryptobot.engine.gate import Gate
from cryptobot.engine.recorder import Recorder
from cryptobot.engine.risk import DailyLossLimit, KillSwitch, NeverEngaged
from cryptobot.model import Trade

HOUR_MS = 3_600_000
_RISK_EPS = 1e-9


class Book(Protocol):
    """One symbol's engine, as the account sees it."""

    symbol: str

    def is_idle(self) -> bool: ...

    def open_risk_usdt(self) -> float: ...

    def engage_kill_switch(self) -> None: ...


class Account:
    def __init__(self, settings: Settings, gate: Gate, recorder: Recorder,
                 kill_switch: KillSwitch | NeverEngaged) -> None:
        self.settings = settings
        self.caps = settings.portfolio
        self.gate = gate
        self.recorder = recorder
        self.kill_switch = kill_switch
        self.equity_usdt = settings.risk.starting_equity_usdt
        self.daily_loss = DailyLossLimit(settings.risk.max_daily_loss)
        self.killed = False
        self.day_ms: int | None = None
        self.books: list[Book] = []
        self._entries_ms: deque[int] = deque()

    def join(self, book: Book) -> None:
        self.books.append(book)

    # --- the day and the kill switch -----------------------------------------------------

    def roll_day(self, now_ms: int) -> None:
        """Every UTC day begun up to `now_ms`, once for the run (even a day no candle came):
        the daily gate decision, the day's opening equity, the daily loss limit."""
        today = utc_day_start_ms(now_ms)
        if self.day_ms is not None and today <= self.day_ms:
            return
        first = today if self.day_ms is None else self.day_ms + DAY_MS
        for day in range(first, today + 1, DAY_MS):
            self.recorder.gate_decision(self.gate.decide(day), "daily")
            self.recorder.equity(day, self.equity_usdt)
        self.day_ms = today
        self.daily_loss.roll(today, self.equity_usdt)
        self.check_kill_switch()

    def day_begun(self, now_ms: int) -> bool:
        return self.day_ms is not None and now_ms - now_ms % DAY_MS <= self.day_ms

    def check_kill_switch(self) -> None:
        if self.kill_switch.engaged() and not self.killed:
            self.killed = True
            for book in self.books:
                book.engage_kill_switch()

    # --- money ---------------------------------------------------------------------------

    def book(self, pnl_usdt: float, now_ms: int, *, today: bool = True) -> None:
        """A closed trade's PnL into the run's equity (and the day's realised loss if it is
        today's), with an equity point."""
        self.equity_usdt += pnl_usdt
        if today:
            self.daily_loss.add(pnl_usdt)
        self.recorder.equity(now_ms, self.equity_usdt)

    def restore(self, trades: Sequence[tuple[Trade, int]], day_ms: int | None) -> None:
        """After a restart: the run's closed trades (every symbol's, each with the engine time
        it was booked at) and the last UTC day the run had begun (None: none) give back the
        equity and the day's realised loss. Set, not added: asking twice changes nothing."""
        equity = day_start_equity = self.settings.risk.starting_equity_usdt
        for trade, booked_ms in trades:  # the same additions, in the same order, as before
            equity += trade.pnl_usdt
            if day_ms is not None and booked_ms < day_ms:
                day_start_equity = equity
        self.equity_usdt = equity
        self.day_ms = day_ms
        if day_ms is not None:
            self.daily_loss.restore(day_ms, day_start_equity,
                                    sum(t.pnl_usdt for t, booked in trades if booked >= day_ms))

    def finish(self, now_ms: int) -> None:
        """End of data: the run's last equity point."""
        self.recorder.equity(now_ms, self.equity_usdt)

    # --- the caps ------------------------------------------------------------------------

    def daily_loss_refusal(self) -> str | None:
        """Why no entry may be sent today (the run's realised loss), or None: asked before
        anything is sized."""
        blocked = self.daily_loss.blocked_reason()
        return f"portfolio: {blocked}" if blocked else None

    def entry_refusal(self, new_risk_usdt: float, now_ms: int) -> str | None:
        """Why a sized entry risking `new_risk_usdt` to its stop may not be sent now (the caps
        of `[portfolio]`), or None."""
        caps = self.caps
        held = [book.symbol for book in self.books if not book.is_idle()]
        if len(held) >= caps.max_open_positions:
            return (f"portfolio: max_open_positions {caps.max_open_positions} reached "
                    f"(open: {', '.join(held)})")
        open_risk = sum(book.open_risk_usdt() for book in self.books)
        equity = self.equity_usdt
        if equity <= 0 or (open_risk + new_risk_usdt) / equity > caps.max_open_risk + _RISK_EPS:
            return (f"portfolio: max_open_risk {caps.max_open_risk:.2%} of equity would be "
                    f"exceeded (open {open_risk / equity if equity > 0 else 0:.2%} + this "
                    f"{new_risk_usdt / equity if equity > 0 else 0:.2%})")
        entries = self._entries_ms
        while entries and entries[0] <= now_ms - HOUR_MS:
            entries.popleft()
        if len(entries) >= caps.max_entries_per_hour:
            return (f"portfolio: max_entries_per_hour {caps.max_entries_per_hour} reached "
                    f"({len(entries)} entries in the last hour)")
        return None

    def entered(self, now_ms: int) -> None:
        """An entry was sent: it counts toward the entries of the hour."""
        self._entries_ms.append(now_ms)
