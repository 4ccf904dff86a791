"""The engine's open trade: fills (an entry is the sum of its fills), the stop, the take-profits,
the trailing stop, the close, and the broker's order events. A live venue's answer to the entry
order says what of it executed before its fills are read: that much is held, and under a stop,
at once.

A base class of `Engine` (engine/loop.py), kept apart so the event loop stays small; its methods
run on the engine's own state. Protection that the venue refuses is owed and retried
(engine/protection.py).
"""

from __future__ import annotations

from cryptobot.engine.open_trade import EXIT_PURPOSES, OpenTrade, PendingEntry
from cryptobot.engine.recorder import OrderEvent
from cryptobot.engine.trade_orders import standard_targets, trailing_level
from cryptobot.model import Fill, OrderPurpose
from cryptobot.strategy.api import TargetContext
from cryptobot.strategy.loading import targets_of


class EngineTrades:
    """`Engine`'s trade keeping (see the module docstring)."""

    def on_fill(self, fill: Fill) -> None:
        self.recorder.fill(fill)
        if fill.purpose is OrderPurpose.ENTRY:
            self._on_entry_fill(fill)
            return
        trade = self._trade
        if trade is None:
            return
        if trade.add_exit(fill):
            self._close_trade(trade)
        elif fill.purpose is OrderPurpose.TP1:
            trade.tp1_done = True
            new_stop = trade.stop_price
            if self.settings.exits.breakeven_after_tp1 and not trade.beyond_stop(
                    trade.entry_price):  # the stop is still on the losing side of the entry
                new_stop, trade.stop_kind = trade.entry_price, "breakeven_stop"
            self._place_stop(trade, new_stop)  # also shrinks the stop to what is left

    def _on_entry_fill(self, fill: Fill) -> None:
        """One trade of the entry order: the position is the sum of the entry's fills, and the
        stop covers what has filled at every moment; the targets go on once the entry is done."""
        entry = self._pending or self._last_entry
        if entry is None or fill.client_id != entry.entry_id:
            return
        trade = self._trade
        if trade is not None and trade.signal_id != entry.signal.signal_id:
            return  # another trade is open (never happens: one position at a time)
        entry.filled += fill.qty_base
        if trade is None:
            trade = self._trade = OpenTrade(
                entry.signal.signal_id, fill.ts_ms, fill.price, fill.qty_base, entry.stop_price,
                fill.fee_usdt, entry.gate, fill.qty_base, entry.stop_price, side=entry.side)
            grown = fill.qty_base
        else:
            held = trade.cover_qty
            trade.add_entry(fill)
            grown = trade.cover_qty - held  # 0 for a fill the entry's answer had told of
        if trade.closing:  # being closed already: close this part too
            if grown > 0 and self.orders.market_exit(trade, OrderPurpose.FLATTEN, qty=grown):
                self.protection.exit_ended(trade, OrderPurpose.FLATTEN, "more entry filled")
        elif self.killed:  # a fill of an entry the kill switch cancelled too late
            self.protection.exit(trade, OrderPurpose.FLATTEN, "kill switch engaged")
        elif trade.beyond_stop(fill.price):
            self.protection.exit(trade, OrderPurpose.FLATTEN, "entry filled at or past the stop")
        elif (entry is not self._pending or entry.complete()) and not trade.stop_covers():
            self._place_stop(trade, trade.stop_price)  # the first stop, or grown to the fills
        # else: covered already (from the entry's answer), or more of this entry is coming in
        # this same answer: one stop for all of it when the entry ends, or at the protection
        # check that follows every broker call
        if entry is self._pending and entry.complete():
            self._entry_done()
        else:
            self._place_owed_targets(trade)  # the entry ended before all its fills were read

    def _cover_executed(self, entry: PendingEntry, executed: float) -> None:
        """The entry order's answer says `executed` of it has filled: that position is on the
        venue now, whether or not its fills have been read, and gets its stop at once (the
        fills, when read, make the trade; they need no stop of their own)."""
        if executed <= entry.filled * (1.0 + 1e-9) + 1e-12:
            return
        trade = self._trade
        if trade is None:
            reference = float(entry.signal.metrics.get("reference_price") or entry.stop_price)
            trade = self._trade = OpenTrade(
                entry.signal.signal_id, self.clock.now_ms(), reference, 0.0, entry.stop_price,
                0.0, entry.gate, 0.0, entry.stop_price, side=entry.side)
        elif trade.signal_id != entry.signal.signal_id:
            return
        trade.entry_executed = max(trade.entry_executed, executed)
        if not (trade.closing or self.killed or trade.stop_covers()):
            self._place_stop(trade, trade.stop_price)

    def _entry_done(self) -> None:
        """The entry order is over (filled, or its unfilled rest cancelled): the targets go on
        for what filled."""
        entry, self._pending = self._pending, None
        trade = self._trade
        if entry is None or trade is None or trade.signal_id != entry.signal.signal_id:
            return
        trade.targets_owed = True
        self.protection.due(trade)  # the stop deferred while its fills came in
        self._place_owed_targets(trade)

    def _place_owed_targets(self, trade: OpenTrade) -> None:
        """The take-profits go on once the entry is done, its fills are in (they size them)
        and a stop works (never before it)."""
        if trade.targets_owed and trade.stop_id is not None and not trade.closing \
                and self._trade is trade and trade.entry_unread <= 1e-12 \
                and (trade.targets_at_ms is None or self.clock.now_ms() >= trade.targets_at_ms):
            legs = trade.target_legs
            trade.targets_owed, trade.target_legs, trade.targets_at_ms = False, ("tp1", "tp2"), None
            self.orders.place_targets(trade, self._targets(trade), legs)

    def _targets(self, trade: OpenTrade, as_of_entry: bool = False) -> tuple[float, ...]:
        """The strategy's targets from the session now, or as it was at the trade's entry (a
        restored trade gets the targets its entry had)."""
        vwap, prev_close = (self.market.session_at(trade.entry_ms) if as_of_entry
                            else (self.market.day_vwap, self.market.prev_day_close))
        ctx = TargetContext(trade.side, trade.entry_price, trade.initial_stop, vwap, prev_close)
        targets = targets_of(self.strategy, ctx)
        return standard_targets(self.settings.exits, ctx) if targets is None else targets

    def _place_stop(self, trade: OpenTrade, price: float) -> None:
        self.protection.place_stop(trade, price)

    def _protect(self) -> None:
        trade = self._trade
        if trade is not None:
            self.protection.due(trade)
            self._place_owed_targets(trade)

    def _trail(self, trade: OpenTrade) -> None:
        level = trailing_level(self.settings.exits, trade)
        sign = trade.side.sign
        if level is not None and sign * (level - trade.stop_price) > 0:  # tighter only
            if sign * (level - trade.entry_price) > 0:
                trade.stop_kind = "trailing_stop"
            self._place_stop(trade, level)

    def _close_trade(self, trade: OpenTrade) -> None:
        self.orders.cancel_all(trade)
        self._trade = None
        if self._last_entry is not None and self._last_entry.signal.signal_id == trade.signal_id:
            self._last_entry = None  # a fill of it now is a new position: reconciliation's
        done = trade.finished(self.symbol)
        self.trades.append(done)
        self.recorder.trade(done, trade.gate)
        self.account.book(done.pnl_usdt, self.clock.now_ms())

    def _on_order(self, event: OrderEvent) -> None:
        self.recorder.order(event)
        intent, status = event.intent, event.status
        entry = self._pending
        if entry is not None and intent.client_id == entry.entry_id:
            if event.filled_qty and status in ("open", "filled", "canceled"):
                self._cover_executed(entry, event.filled_qty)
            if self._trade is not None and status in ("filled", "canceled", "rejected"):
                self._entry_done()  # what filled is the position; the rest will not come
            elif status in ("canceled", "rejected"):
                self._pending = None  # nothing filled
            return
        trade = self._trade
        if trade is None or not intent.client_id.startswith(trade.signal_id + "-"):
            return
        if intent.purpose is OrderPurpose.FLATTEN and status in ("open", "filled"):
            trade.closing = True  # the broker is closing it itself: no second market close
        elif (intent.purpose in EXIT_PURPOSES and status in ("canceled", "rejected")
              and trade.closing):
            self.protection.exit_ended(trade, intent.purpose, event.detail or status)
