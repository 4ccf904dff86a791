"""How an engine goes on after a restart: the part of `Engine` a restore calls.

A restarted run gets back what it had without storing any of the engine's insides:
- `replay_history`: the run's own candles, open interest and funding since it started, in the
  order the feed delivered them. Indicators are rebuilt, and the strategy is asked on the same
  candles as before (the trigger, or while `waiting()`), told whether a position was open
  then; its decisions are dropped. A deterministic strategy so reaches the state it had, a
  pending setup included. No order is sent and nothing is recorded.
- `restore_position` / `restore_entry`: the open trade (or the entry sent and not filled), from
  the journal and the broker's working orders (runners/restore.py reads the journal).
- `restore_account`: equity, the day's realised loss, and the signals and trades so far.

A base class of `Engine` (engine/loop.py), kept apart so the event loop stays small; its
methods run on the engine's own state (they import nothing from loop.py: no import circle).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from cryptobot.engine.open_trade import PendingEntry, restore_trade
from cryptobot.errors import ReconciliationError
from cryptobot.model import (
    Candle,
    FundingRate,
    GateDecision,
    Liquidation,
    OpenInterest,
    Position,
    Signal,
    Trade,
    TradeLeg,
)

HistoryEvent = Candle | OpenInterest | FundingRate | Liquidation


class PositionHistory(Protocol):
    """The run's positions over time, from its journal (see runners/restore.py)."""

    def busy(self, now_ms: int) -> bool:
        """A position or an entry was open when the engine's clock read `now_ms`."""
        ...

    def held(self, before_ms: int) -> tuple[str, float] | None:
        """(signal id, quantity) held once the fills stamped before `before_ms` count."""
        ...


class EngineRestart:
    """`Engine`'s restart entry points (see the module docstring)."""

    def replay_history(self, events: Iterable[HistoryEvent],
                       advance_clock: Callable[[int], None],
                       positions: PositionHistory) -> dict[str, float]:
        """Feed the run's own history (after `warm_up`): no orders, nothing recorded.
        `advance_clock` moves a simulated clock to each event's time (live: nothing). Returns
        the funding each position paid meanwhile, by signal id."""
        funding: dict[str, float] = {}
        for event in events:
            if isinstance(event, Candle):
                advance_clock(event.ts_close_ms)
                self._replay_candle(event, positions, funding)
                continue
            advance_clock(event.ts_ms)
            if isinstance(event, OpenInterest):
                self.market.open_interest.add(event.ts_ms, event)  # stored already
            elif isinstance(event, FundingRate):
                self.on_funding(event)
            else:
                self.on_liquidation(event)
        return funding

    def _replay_candle(self, candle: Candle, positions: PositionHistory,
                       funding: dict[str, float]) -> None:
        """`on_base_candle` without the broker and the recorder: the same order of steps."""
        self.market.on_base_candle(candle)
        self.candles_processed += 1
        held = positions.held(candle.ts_close_ms)  # after this candle's fills
        if held is not None or positions.held(candle.ts_open_ms) is not None:
            self.exposure_ms += candle.interval_ms
        if held is not None and self.settings.costs.funding:
            rate = self.market.funding_settled_in(candle)
            if rate is not None:
                signal_id, qty = held
                funding[signal_id] = funding.get(signal_id, 0.0) + qty * candle.close * rate
        for closed in self._aggregate(candle):
            row = self._signal_row = self.market.close_signal_candle(closed)
            triggered = self.market.triggered(row)
            if triggered or self.strategy_waiting():
                busy = positions.busy(self.clock.now_ms())
                for _ in self._ask_strategy(closed, row, triggered, busy):
                    pass  # what it decided was acted on (or not) the first time

    def restore_position(self, position: Position, *,
                         entry_qty_base: float | None = None, entry_fee_usdt: float = 0.0,
                         legs: tuple[TradeLeg, ...] = (), stop_count: int | None = None,
                         highest_close: float | None = None, initial_stop: float | None = None,
                         gate: GateDecision | None = None, funding_usdt: float = 0.0) -> None:
        """Take over a position after a restart (see `restore_trade`); one with no working
        stop gets one at `position.stop_price` at once. The highest signal close since the
        entry and the ATR (the trailing stop's inputs) come from the candles the engine holds
        unless `highest_close` is given."""
        if not self.is_idle():
            raise ReconciliationError(f"cannot restore {position.signal_id}: the engine already "
                                      "holds a position or an entry")
        trade = restore_trade(position, self.broker.working_orders(), entry_qty_base,
                              entry_fee_usdt, legs)
        rows = range(len(self.market.candles))
        seen = self.market.highest_close(rows, since_ms=position.opened_ms) if rows else None
        if seen is not None:
            trade.highest_close, trade.atr = seen, self.market.atr(rows.stop - 1)
        if highest_close is not None:
            trade.highest_close = highest_close
        if initial_stop is not None:
            trade.initial_stop = initial_stop
        if stop_count is not None:
            trade.stop_count = max(trade.stop_count, stop_count)
        trade.gate, trade.funding_usdt = gate, funding_usdt
        self._trade = trade
        if trade.stop_id is None and not trade.closing:  # never a position without a stop
            self._place_stop(trade, position.stop_price)

    def restore_entry(self, signal: Signal, stop_price: float,
                      gate: GateDecision | None) -> None:
        """After a restart: an entry sent and not filled yet (its order works at the broker)."""
        if not self.is_idle():
            raise ReconciliationError(f"cannot restore the entry of {signal.signal_id}: the "
                                      "engine already holds a position or an entry")
        atr = signal.metrics.get("stop_atr")
        self._pending = PendingEntry(signal, stop_price, math.nan if atr is None else atr, gate)

    def restore_account(self, signals: Sequence[Signal],
                        trades: Sequence[tuple[Trade, int]], day_ms: int | None) -> None:
        """After a restart: the run's signals and closed trades so far, each trade with the
        engine time it was booked at, and the last UTC day the run had begun (None: none), so
        that equity, the day's realised loss and the summary go on where they were."""
        self.signals = list(signals)
        self.trades = [trade for trade, _ in trades]
        equity = day_start_equity = self.settings.risk.starting_equity_usdt
        for trade, booked_ms in trades:  # the same additions, in the same order, as before
            equity += trade.pnl_usdt
            if day_ms is not None and booked_ms < day_ms:
                day_start_equity = equity
        self.equity_usdt = equity
        self._day_ms = day_ms
        if day_ms is not None:
            self.daily_loss.roll(day_ms, day_start_equity)
            for trade, booked_ms in trades:
                if booked_ms >= day_ms:
                    self.daily_loss.add(trade.pnl_usdt)
