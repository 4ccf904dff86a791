"""The orders of one open trade: its stop, its take-profits and its market exits.

The engine decides when; this places, replaces and cancels through the broker, records what
the broker refused and returns the refusal: the engine's protection (engine/protection.py)
decides what to do about it. Nothing here cancels a stop before its replacement, or the market
exit that makes it unneeded, has been accepted.
"""

from __future__ import annotations

import math

from cryptobot.clock import Clock
from cryptobot.config import ExitSettings, Settings
from cryptobot.engine.broker import Broker, client_id
from cryptobot.engine.market_rules import MarketRules
from cryptobot.engine.open_trade import OpenTrade
from cryptobot.engine.recorder import OrderEvent, Recorder
from cryptobot.errors import ExchangeError, TemporaryExchangeError, VenueWaitError
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, PositionSide
from cryptobot.strategy.api import TargetContext


def standard_targets(exits: ExitSettings, ctx: TargetContext) -> tuple[float, ...]:
    """The `[exits]` rule: the day's VWAP and the previous day's close where at least
    `min_target_r` beyond the entry (above a long's, below a short's; `fixed_r`: always), else
    fixed multiples of R, nearest first."""
    sign = ctx.side.sign
    risk = sign * (ctx.entry_price - ctx.stop_price)  # R, positive
    fixed = (ctx.entry_price + sign * exits.fixed_tp1_r * risk,
             ctx.entry_price + sign * exits.fixed_tp2_r * risk)
    if exits.targets == "fixed_r":
        return fixed
    floor = ctx.entry_price + sign * exits.min_target_r * risk
    milestones = sorted({m for m in (ctx.day_vwap, ctx.prev_day_close)
                         if math.isfinite(m) and sign * (m - floor) >= 0},
                        key=lambda m: sign * m)
    return tuple(milestones) if milestones else fixed


def trailing_active(exits: ExitSettings, trade: OpenTrade) -> bool:
    """The `[exits]` trailing stop runs after TP1 (if enabled)."""
    return exits.trailing and trade.tp1_done


def trailing_level(exits: ExitSettings, trade: OpenTrade) -> float | None:
    """`trailing_atr_mult` ATR behind the best close since entry (under a long's highest, above
    a short's lowest), never behind break-even (None while not trailing, or until a signal
    candle has closed since the entry)."""
    if not trailing_active(exits, trade) or trade.atr is None or trade.best_close is None:
        return None
    sign = trade.side.sign
    level = trade.best_close - sign * exits.trailing_atr_mult * trade.atr
    return max(level, trade.entry_price) if sign > 0 else min(level, trade.entry_price)


class TradeOrders:
    def __init__(self, settings: Settings, broker: Broker, recorder: Recorder, clock: Clock,
                 market_rules: MarketRules | None) -> None:
        self.settings = settings
        self.symbol = settings.market.symbol
        self.broker = broker
        self.recorder = recorder
        self.clock = clock
        self.market_rules = market_rules

    def submit_entry(self, signal_id: str, qty: float, stop_price: float,
                     side: PositionSide = PositionSide.LONG) -> ExchangeError | None:
        """The market entry, carrying its planned stop. The broker's refusal, if it refused;
        an outcome it could not learn (`TemporaryExchangeError`) is returned too: the broker
        finds out at its next reconciliation and reports the fills or the refusal then."""
        intent = OrderIntent(client_id(signal_id, "entry"), self.symbol, side.entry_side,
                             OrderType.MARKET, qty, OrderPurpose.ENTRY, stop_price=stop_price)
        try:
            self.broker.submit(intent)
        except ExchangeError as exc:
            self._refused(intent, exc)
            return exc
        return None

    def place_targets(self, trade: OpenTrade, targets: tuple[float, ...],
                      legs: tuple[str, ...] = ("tp1", "tp2")) -> None:
        """TP1 (`tp1_fraction` of the entry) and TP2 (the rest) as reduce-only limits; `legs`
        names the ones to place and their client-id legs (a restore re-places what is
        missing under new ids, e.g. ("tp2r",)). They go to the broker together (live: one
        request). One the broker could not send because the venue asked it to wait stays owed
        until the wait is over; one refused is recorded, and the trade rides its stop."""
        if not targets:
            return
        tp1_qty = trade.qty_base * self.settings.exits.tp1_fraction
        if self.settings.risk.lot_rounding and self.market_rules is not None:
            tp1_qty = self.market_rules.round_qty_down(tp1_qty)
        if tp1_qty <= 0:  # too small to split: all of it exits at TP1 (then nothing is left)
            tp1_qty = trade.qty_base
        plan = {OrderPurpose.TP1: (targets[0], min(tp1_qty, trade.remaining_qty))}
        if len(targets) > 1:
            tp2_qty = trade.remaining_qty - (0.0 if trade.tp1_done else tp1_qty)
            plan[OrderPurpose.TP2] = (targets[1], tp2_qty)
        chosen: list[tuple[str, OrderIntent]] = []  # (leg, its order)
        for leg in legs:
            purpose = OrderPurpose.TP1 if leg.startswith("tp1") else OrderPurpose.TP2
            if purpose not in plan or plan[purpose][1] <= 0:
                continue
            price, qty = plan[purpose]
            if not math.isfinite(price):
                continue
            chosen.append((leg, OrderIntent(client_id(trade.signal_id, leg), self.symbol,
                                            trade.side.exit_side, OrderType.LIMIT, qty, purpose,
                                            price=price, reduce_only=True)))
        if not chosen:
            return
        waiting: list[str] = []
        refusals = self.broker.submit_batch([intent for _, intent in chosen])
        for (leg, intent), refusal in zip(chosen, refusals, strict=True):
            if refusal is None:
                trade.tp_ids.append(intent.client_id)
            elif isinstance(refusal, VenueWaitError):  # not sent: placed once the wait is over
                waiting.append(leg)
                trade.targets_at_ms = self.clock.now_ms() + math.ceil(refusal.wait_s * 1000)
            else:  # the stop still protects; the trade rides it
                self._refused(intent, refusal)
        if waiting:
            trade.targets_owed, trade.target_legs = True, tuple(waiting)

    def place_stop(self, trade: OpenTrade, price: float) -> ExchangeError | None:
        """Place (or move, or resize to what is held, `cover_qty`) the trade's stop; the
        broker's refusal, if it refused. A move places the new stop before the old one is
        cancelled. A stop whose answer was lost is tried again under the same client id while
        it asks for the same (if the venue did get it, the broker finds it by that id instead
        of sending a second one); one that asks for another price or size gets a new id."""
        if trade.unanswered_stop not in (None, (price, trade.cover_qty)):
            trade.stop_count += 1  # that id may be on the venue as it was: not reused
        intent = OrderIntent(client_id(trade.signal_id, f"stop{trade.stop_count + 1}"),
                             self.symbol, trade.side.exit_side, OrderType.STOP_MARKET,
                             trade.cover_qty,
                             OrderPurpose.STOP, price=price, reduce_only=True)
        try:
            if trade.stop_id is None:
                self.broker.submit(intent)
            else:
                self.broker.replace_stop(trade.stop_id, intent)
        except ExchangeError as exc:
            lost = isinstance(exc, TemporaryExchangeError)
            trade.unanswered_stop = (price, intent.qty_base) if lost else None
            self._refused(intent, exc)
            return exc
        trade.stop_count += 1
        trade.unanswered_stop = None
        trade.stop_id, trade.stop_price, trade.stop_qty = intent.client_id, price, intent.qty_base
        return None

    def market_exit(self, trade: OpenTrade, purpose: OrderPurpose, why: str = "",
                    qty: float | None = None) -> ExchangeError | None:
        """Close `qty` (default: all that is held) at market; `why` is stored with it. The stop
        and the targets are cancelled only once the venue has accepted the exit and it still
        works (an exit the venue ended at once, unfilled, leaves them): a refused exit leaves
        them working, and the refusal is returned for the engine to retry (under the same
        client id while it asks for the same, as stops are)."""
        size = trade.cover_qty if qty is None else qty
        if trade.unanswered_exit not in (None, size):
            trade.exit_count += 1
        leg = "time" if purpose is OrderPurpose.TIME_EXIT else "flat"
        if trade.exit_count:
            leg += str(trade.exit_count + 1)  # each accepted market exit its own client id
        intent = OrderIntent(client_id(trade.signal_id, leg), self.symbol, trade.side.exit_side,
                             OrderType.MARKET, size, purpose, reduce_only=True)
        if why:
            self.recorder.order(OrderEvent(self.clock.now_ms(), intent, "submitted", why))
        was_closing = trade.closing
        trade.closing = True  # in flight: an end the broker reports while placing it is seen
        try:
            self.broker.submit(intent)
        except ExchangeError as exc:
            trade.closing = was_closing
            trade.unanswered_exit = size if isinstance(exc, TemporaryExchangeError) else None
            self._refused(intent, exc)
            return exc
        trade.exit_count += 1
        trade.unanswered_exit = None
        if qty is not None:
            trade.closing = was_closing
        elif trade.closing:  # still working (not filled and closed, not ended unfilled)
            self.cancel_all(trade)
        return None

    def cancel_all(self, trade: OpenTrade) -> None:
        for order_id in [*trade.tp_ids, trade.stop_id]:
            if order_id is not None:
                self.broker.cancel(order_id)
        trade.tp_ids, trade.stop_id, trade.stop_qty = [], None, 0.0

    def _refused(self, intent: OrderIntent, exc: ExchangeError) -> None:
        if isinstance(exc, TemporaryExchangeError):  # not a refusal: the answer never came
            self.recorder.order(OrderEvent(self.clock.now_ms(), intent, "submitted",
                                           f"answer lost, outcome unknown (the broker looks "
                                           f"it up): {exc}"))
            return
        self.recorder.order(OrderEvent(self.clock.now_ms(), intent, "rejected", str(exc)))
