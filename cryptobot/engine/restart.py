"""How an engine goes on after a restart: the part of `Engine` a restore calls.

A restarted run gets back what it had without storing any of the engine's insides:
- `replay_history`: the run's own candles, open interest and funding since it started, in the
  order the feed delivered them. Indicators are rebuilt, and the strategy is asked on the same
  candles as before (the trigger, or while `waiting()`), told whether a position was open
  then; its decisions are dropped. A deterministic strategy so reaches the state it had, a
  pending setup included. No order is sent and nothing is recorded.
- `restore_position` / `restore_entry`: the open trade (or the entry sent and not filled), from
  the journal and the broker's working orders (runners/restore.py reads the journal).
- `restore_account`: equity, the day's realised loss, and the signals and trades so far;
  `book_trade_closed_away`: a trade that closed while no engine held it.

A base class of `Engine` (engine/loop.py), kept apart so the event loop stays small; its
methods run on the engine's own state (they import nothing from loop.py: no import circle).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from cryptobot.clock import utc_day_start_ms
from cryptobot.data.funding_times import settlement_ms
from cryptobot.engine.open_trade import OpenTrade, PendingEntry, restore_trade
from cryptobot.errors import ReconciliationError
from cryptobot.model import (
    Candle,
    FundingRate,
    GateDecision,
    Liquidation,
    OpenInterest,
    OrderPurpose,
    Position,
    PositionSide,
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
        """(signal id, quantity) held once the fills stamped before `before_ms` count; the
        quantity is negative for a short (its funding has the other sign)."""
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
        due = self.market.funding_due
        if self.settings.costs.funding:  # what was held at each settlement, as `_charge_funding`
            due.saw_open(candle)  # (a rate that came late: at its own candle's open)
            for rate in due.at_open_of(candle, -1):
                held_then = positions.held(settlement_ms(rate.ts_ms))
                if held_then is not None:
                    signal_id, qty = held_then
                    price, _ = due.held_when_due(rate, candle, qty, ())
                    funding[signal_id] = funding.get(signal_id, 0.0) + qty * price * rate.rate
                    due.charged(rate)
        self.market.on_base_candle(candle)
        self.candles_processed += 1
        held = positions.held(candle.ts_close_ms)  # after this candle's fills
        if held is not None or positions.held(candle.ts_open_ms) is not None:
            self.exposure_ms += candle.interval_ms
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
                         best_close: float | None = None, initial_stop: float | None = None,
                         gate: GateDecision | None = None, funding_usdt: float = 0.0,
                         target_prices: Mapping[OrderPurpose, float] | None = None,
                         exit_count: int = 0) -> None:
        """Take over a position after a restart (see `restore_trade`) and rebuild what it
        lacks: a stop covering all it holds (at `position.stop_price` if none works), the
        break-even stop when TP1 has filled, and the take-profits neither working nor filled
        (at `target_prices`, the ones it was given before, else the strategy's targets as of the
        entry: the day VWAP and previous close of then, so a target the entry skipped stays
        skipped).
        The best signal close since the entry (a long's highest, a short's lowest) and the ATR
        (the trailing stop's inputs) come from the candles the engine holds unless
        `best_close` is given.
        `exit_count`: market exits the trade has sent (their client ids are not reused)."""
        if not self.is_idle():
            raise ReconciliationError(f"cannot restore {position.signal_id}: the engine already "
                                      "holds a position or an entry")
        trade = restore_trade(position, self.broker.working_orders(), entry_qty_base,
                              entry_fee_usdt, legs)
        rows = range(len(self.market.candles))
        seen = (self.market.best_close(rows, position.opened_ms, position.side)
                if rows else None)
        if seen is not None:
            trade.best_close, trade.atr = seen, self.market.atr(rows.stop - 1)
        if best_close is not None:
            trade.best_close = best_close
        if initial_stop is not None:
            trade.initial_stop = initial_stop
        if stop_count is not None:
            trade.stop_count = max(trade.stop_count, stop_count)
        trade.gate, trade.funding_usdt = gate, funding_usdt
        trade.exit_count = max(trade.exit_count, exit_count)
        self._trade = trade
        if trade.closing:  # its market exit works: nothing to add
            return
        exits = self.settings.exits
        if trade.tp1_done and exits.breakeven_after_tp1 and not trade.beyond_stop(
                trade.entry_price):
            trade.stop_kind = "breakeven_stop"  # TP1 filled before the stop was moved
            self._place_stop(trade, trade.entry_price)
        elif not trade.stop_covers():  # never a position without a full stop
            self._place_stop(trade, trade.stop_price)
        if self._trade is trade and not trade.closing:
            self._restore_targets(trade, target_prices or {})

    def _restore_targets(self, trade: OpenTrade, known: Mapping[OrderPurpose, float]) -> None:
        working = {intent.purpose for intent in self.broker.working_orders()
                   if intent.client_id in trade.tp_ids}
        filled = {leg.reason for leg in trade.legs}
        computed = self._targets(trade, as_of_entry=True)  # what the entry had, not today's
        prices = (known.get(OrderPurpose.TP1, computed[0] if computed else math.nan),
                  known.get(OrderPurpose.TP2, computed[1] if len(computed) > 1 else math.nan))
        missing = []  # (a target with no price, NaN, is skipped by place_targets)
        if not trade.tp1_done and OrderPurpose.TP1 not in working:
            missing.append(f"tp1r{trade.stop_count}")
        if math.isfinite(prices[1]) and OrderPurpose.TP2 not in working and "tp2" not in filled:
            missing.append(f"tp2r{trade.stop_count}")
        if missing:
            self.orders.place_targets(trade, prices, tuple(missing))

    def book_trade_closed_away(self, trade: Trade) -> None:
        """After a restart: a trade that closed while no engine held it (on the exchange while
        the bot was down, or by the broker's reconciliation at start), booked now as a close
        would have been: the run's trades, equity, the day's realised loss, the recorder."""
        now_ms = self.clock.now_ms()
        self.account.daily_loss.roll(now_ms, self.account.equity_usdt)  # the day it is booked in
        self.trades.append(trade)
        self.recorder.trade(trade, None)  # a loss of an earlier day is not today's:
        self.account.book(trade.pnl_usdt, now_ms, today=trade.exit_ms >= utc_day_start_ms(now_ms))

    def restore_entry(self, signal: Signal, stop_price: float, gate: GateDecision | None,
                      side: PositionSide = PositionSide.LONG) -> None:
        """After a restart: an entry sent and not filled yet (its order works at the broker)."""
        if not self.is_idle():
            raise ReconciliationError(f"cannot restore the entry of {signal.signal_id}: the "
                                      "engine already holds a position or an entry")
        atr = signal.metrics.get("stop_atr")
        qty = signal.metrics.get("qty_base")
        self._pending = self._last_entry = PendingEntry(
            signal, stop_price, math.nan if atr is None else atr, gate,
            math.inf if qty is None else float(qty), side=side)

    def restore_account(self, signals: Sequence[Signal],
                        trades: Sequence[tuple[Trade, int]], day_ms: int | None,
                        run_trades: Sequence[tuple[Trade, int]] | None = None) -> None:
        """After a restart: the run's signals and closed trades so far, each trade with the
        engine time it was booked at, and the last UTC day the run had begun (None: none), so
        that equity, the day's realised loss and the summary go on where they were. In a run
        of several symbols, `signals` and `trades` are this symbol's and `run_trades` every
        symbol's (the account's equity and daily loss are the run's)."""
        self.signals = list(signals)
        self.trades = [trade for trade, _ in trades]
        self.account.restore(trades if run_trades is None else run_trades, day_ms)
