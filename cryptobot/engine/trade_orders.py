"""The orders of one open trade: its stop, its take-profits and its market exits.

The engine decides when; this places, replaces and cancels through the broker and records what
the broker refused. Never a position without a stop: when its first stop cannot be placed the
position is closed at market (unless the broker is already closing it).
"""

from __future__ import annotations

import math

from cryptobot.clock import Clock
from cryptobot.config import ExitSettings, Settings
from cryptobot.engine.broker import Broker, client_id
from cryptobot.engine.market_rules import MarketRules
from cryptobot.engine.open_trade import OpenTrade
from cryptobot.engine.recorder import OrderEvent, Recorder
from cryptobot.errors import ExchangeError
from cryptobot.model import OrderIntent, OrderPurpose, OrderType, Side
from cryptobot.strategy.api import TargetContext


def standard_targets(exits: ExitSettings, ctx: TargetContext) -> tuple[float, ...]:
    """The `[exits]` rule: the day's VWAP and the previous day's close where at least
    `min_target_r` above the entry (`fixed_r`: always), else fixed multiples of R."""
    risk = ctx.entry_price - ctx.stop_price
    fixed = (ctx.entry_price + exits.fixed_tp1_r * risk, ctx.entry_price + exits.fixed_tp2_r * risk)
    if exits.targets == "fixed_r":
        return fixed
    floor = ctx.entry_price + exits.min_target_r * risk
    milestones = sorted({m for m in (ctx.day_vwap, ctx.prev_day_close)
                         if math.isfinite(m) and m >= floor})
    return tuple(milestones) if milestones else fixed


def trailing_active(exits: ExitSettings, trade: OpenTrade) -> bool:
    """The `[exits]` trailing stop runs after TP1 (if enabled)."""
    return exits.trailing and trade.tp1_done


def trailing_level(exits: ExitSettings, trade: OpenTrade) -> float | None:
    """`trailing_atr_mult` ATR under the highest close since entry, never under break-even
    (None while not trailing, or until a signal candle has closed since the entry)."""
    if not trailing_active(exits, trade) or trade.atr is None:
        return None
    return max(trade.highest_close - exits.trailing_atr_mult * trade.atr, trade.entry_price)


class TradeOrders:
    def __init__(self, settings: Settings, broker: Broker, recorder: Recorder, clock: Clock,
                 market_rules: MarketRules | None) -> None:
        self.settings = settings
        self.symbol = settings.market.symbol
        self.broker = broker
        self.recorder = recorder
        self.clock = clock
        self.market_rules = market_rules

    def submit_entry(self, signal_id: str, qty: float, stop_price: float) -> bool:
        """The market entry, carrying its planned stop; False if the broker refused it."""
        intent = OrderIntent(client_id(signal_id, "entry"), self.symbol, Side.BUY,
                             OrderType.MARKET, qty, OrderPurpose.ENTRY, stop_price=stop_price)
        try:
            self.broker.submit(intent)
        except ExchangeError as exc:
            self._refused(intent, exc)
            return False
        return True

    def place_targets(self, trade: OpenTrade, targets: tuple[float, ...]) -> None:
        if not targets:
            return
        tp1_qty = trade.qty_base * self.settings.exits.tp1_fraction
        if self.settings.risk.lot_rounding and self.market_rules is not None:
            tp1_qty = self.market_rules.round_qty_down(tp1_qty)
        if tp1_qty <= 0:  # too small to split: all of it exits at TP1 (then nothing is left)
            tp1_qty = trade.qty_base
        legs = [(OrderPurpose.TP1, "tp1", targets[0], tp1_qty)]
        if len(targets) > 1:
            legs.append((OrderPurpose.TP2, "tp2", targets[1], trade.qty_base - tp1_qty))
        for purpose, leg, price, qty in legs:
            if qty <= 0:
                continue
            intent = OrderIntent(client_id(trade.signal_id, leg), self.symbol, Side.SELL,
                                 OrderType.LIMIT, qty, purpose, price=price, reduce_only=True)
            try:
                self.broker.submit(intent)
                trade.tp_ids.append(intent.client_id)
            except ExchangeError as exc:  # the stop still protects; the trade rides it
                self._refused(intent, exc)

    def place_stop(self, trade: OpenTrade, price: float) -> ExchangeError | None:
        """Place (or move) the trade's stop; the broker's refusal, if it refused."""
        trade.stop_count += 1
        intent = OrderIntent(client_id(trade.signal_id, f"stop{trade.stop_count}"), self.symbol,
                             Side.SELL, OrderType.STOP_MARKET, trade.remaining_qty,
                             OrderPurpose.STOP, price=price, reduce_only=True)
        try:
            if trade.stop_id is None:
                self.broker.submit(intent)  # a live broker closes at market itself if this fails
            else:
                self.broker.replace_stop(trade.stop_id, intent)
        except ExchangeError as exc:
            self._refused(intent, exc)
            return exc
        trade.stop_id, trade.stop_price = intent.client_id, price
        return None

    def flatten(self, trade: OpenTrade, why: str) -> None:
        self.recorder.order(OrderEvent(self.clock.now_ms(), OrderIntent(
            client_id(trade.signal_id, "flat"), self.symbol, Side.SELL, OrderType.MARKET,
            trade.remaining_qty, OrderPurpose.FLATTEN, reduce_only=True), "submitted", why))
        self.market_exit(trade, OrderPurpose.FLATTEN, "flat")

    def market_exit(self, trade: OpenTrade, purpose: OrderPurpose, leg: str) -> None:
        self.cancel_all(trade)
        trade.closing = True
        self.broker.submit(OrderIntent(client_id(trade.signal_id, leg), self.symbol, Side.SELL,
                                       OrderType.MARKET, trade.remaining_qty, purpose,
                                       reduce_only=True))

    def cancel_all(self, trade: OpenTrade) -> None:
        for order_id in [*trade.tp_ids, trade.stop_id]:
            if order_id is not None:
                self.broker.cancel(order_id)
        trade.tp_ids, trade.stop_id = [], None

    def _refused(self, intent: OrderIntent, exc: ExchangeError) -> None:
        self.recorder.order(OrderEvent(self.clock.now_ms(), intent, "rejected", str(exc)))
