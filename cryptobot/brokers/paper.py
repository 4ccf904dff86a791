"""The paper fill simulator: backtests and paper trading both fill orders here.

Fills are resolved on each closed base candle, in this order:
1. market orders working before the candle fill at its open, plus slippage (taker);
   orders placed in reaction (the stop, the take-profits) are working from that open on;
2. stops, then take-profits, against the candle's low and high. A candle that touches both
   fills the stop first (the pessimistic order). A stop the open gaps through fills at the open,
   the worse of the stop and the first price past it, minus slippage (taker). A reduce-only
   limit fills at its price (or the better open) when the price trades through it (maker).
Orders placed while step 2 runs (a break-even stop after TP1, say) work from the next candle:
the simulator cannot know the path inside a candle. Stops trigger on the last price; mark-price
candles are not simulated.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptobot.clock import Clock
from cryptobot.config import CostSettings
from cryptobot.engine.broker import FillHandler, OrderHandler
from cryptobot.engine.recorder import OrderEvent
from cryptobot.errors import ExchangeError, OrderRejectedError
from cryptobot.model import Candle, Fill, OrderIntent, OrderType, Side


@dataclass(slots=True)
class _Working:
    intent: OrderIntent
    armed: bool  # may fill on the candle being resolved


class PaperBroker:
    def __init__(self, costs: CostSettings, clock: Clock, limit_fill_on_touch: bool = False):
        self.costs = costs
        self.clock = clock
        # False: a limit needs the high strictly above it ("trades through").
        self.limit_fill_on_touch = limit_fill_on_touch
        self._orders: dict[str, _Working] = {}
        self._position_qty = 0.0
        self._resolving = False
        self._on_fill: FillHandler | None = None
        self._on_order: OrderHandler | None = None

    # --- Broker protocol -----------------------------------------------------------------

    def bind(self, on_fill: FillHandler, on_order: OrderHandler) -> None:
        self._on_fill = on_fill
        self._on_order = on_order

    def submit(self, intent: OrderIntent) -> None:
        if intent.client_id in self._orders:
            raise OrderRejectedError(f"duplicate client order id {intent.client_id}")
        if intent.qty_base <= 0:
            raise OrderRejectedError(f"{intent.client_id}: quantity must be positive")
        if intent.order_type is not OrderType.MARKET and intent.price is None:
            raise OrderRejectedError(f"{intent.client_id}: {intent.order_type} needs a price")
        # Orders placed while a candle's range is being resolved work from the next candle.
        self._orders[intent.client_id] = _Working(intent, armed=not self._resolving)
        self._event(intent, "open")

    def submit_batch(self, intents: Sequence[OrderIntent]) -> list[ExchangeError | None]:
        """Each in turn, as `submit`; each one's refusal (None: accepted)."""
        refusals: list[ExchangeError | None] = []
        for intent in intents:
            try:
                self.submit(intent)
            except ExchangeError as exc:
                refusals.append(exc)
            else:
                refusals.append(None)
        return refusals

    def cancel(self, client_id: str) -> None:
        working = self._orders.pop(client_id, None)
        if working is not None:
            self._event(working.intent, "canceled")

    def replace_stop(self, old_client_id: str | None, new_intent: OrderIntent) -> None:
        self.submit(new_intent)  # new first: the position is never without a stop
        if old_client_id is not None:
            self.cancel(old_client_id)

    def working_orders(self) -> tuple[OrderIntent, ...]:
        return tuple(w.intent for w in self._orders.values())

    def restore(self, working: Iterable[OrderIntent], position_qty: float) -> None:
        """After a restart: the orders still working and the position held, as the run's
        journal has them (no events: they are stored already). They work from the next
        candle on, as they did."""
        if self._orders or self._position_qty:
            raise OrderRejectedError("the paper broker already holds orders or a position")
        for intent in working:
            self._orders[intent.client_id] = _Working(intent, armed=True)
        self._position_qty = position_qty

    def quiet_band(self) -> tuple[float, float] | None:
        """(floor, ceiling): a base candle with low > floor and high < ceiling fills nothing.
        None while a market order works (it fills on the next candle whatever its range)."""
        floor, ceiling = float("-inf"), float("inf")
        for working in self._orders.values():
            intent = working.intent
            if intent.order_type is OrderType.MARKET:
                return None
            if (intent.side is Side.SELL) == (intent.order_type is OrderType.STOP_MARKET):
                floor = max(floor, intent.price)  # sell stop / buy limit: touched from above
            else:
                ceiling = min(ceiling, intent.price)  # sell limit / buy stop: from below
        return floor, ceiling

    def on_base_candle(self, candle: Candle) -> None:
        if not self._orders:
            return
        for working in list(self._orders.values()):
            if working.armed and working.intent.order_type is OrderType.MARKET:
                self._fill_market(working.intent, candle)
        self._resolving = True
        try:
            self._resolve_range(candle)
        finally:
            self._resolving = False
        for working in self._orders.values():
            working.armed = True

    # --- the simulation ------------------------------------------------------------------

    def _resolve_range(self, candle: Candle) -> None:
        stops = [w.intent for w in self._orders.values()
                 if w.armed and w.intent.order_type is OrderType.STOP_MARKET]
        for intent in stops:
            if intent.client_id in self._orders and self._stop_triggered(intent, candle):
                self._fill_stop(intent, candle)
        limits = [w.intent for w in self._orders.values()
                  if w.armed and w.intent.order_type is OrderType.LIMIT]
        limits.sort(key=lambda o: o.price if o.side is Side.SELL else -o.price)
        for intent in limits:
            if intent.client_id in self._orders and self._limit_reached(intent, candle):
                self._fill_limit(intent, candle)

    def _stop_triggered(self, intent: OrderIntent, candle: Candle) -> bool:
        if intent.side is Side.SELL:
            return candle.low <= intent.price
        return candle.high >= intent.price

    def _limit_reached(self, intent: OrderIntent, candle: Candle) -> bool:
        if intent.side is Side.SELL:
            return (candle.high >= intent.price if self.limit_fill_on_touch
                    else candle.high > intent.price)
        return candle.low <= intent.price if self.limit_fill_on_touch else candle.low < intent.price

    def _slipped(self, price: float, side: Side) -> float:
        slip = self.costs.slippage_bps / 10_000.0
        return price * (1.0 + slip) if side is Side.BUY else price * (1.0 - slip)

    def _fill_market(self, intent: OrderIntent, candle: Candle) -> None:
        self._fill(intent, candle, self._slipped(candle.open, intent.side), maker=False)

    def _fill_stop(self, intent: OrderIntent, candle: Candle) -> None:
        if intent.side is Side.SELL:
            touched = min(intent.price, candle.open)  # a gap down fills at the open
        else:
            touched = max(intent.price, candle.open)
        self._fill(intent, candle, self._slipped(touched, intent.side), maker=False)

    def _fill_limit(self, intent: OrderIntent, candle: Candle) -> None:
        if intent.side is Side.SELL:
            price = max(intent.price, candle.open)
        else:
            price = min(intent.price, candle.open)
        self._fill(intent, candle, price, maker=True)

    def _fill(self, intent: OrderIntent, candle: Candle, price: float, maker: bool) -> None:
        qty = intent.qty_base
        if intent.reduce_only:
            qty = min(qty, abs(self._position_qty))
        del self._orders[intent.client_id]
        if qty <= 0:
            self._event(intent, "canceled", "reduce-only order with no position left")
            return
        self._position_qty += qty if intent.side is Side.BUY else -qty
        rate = self.costs.maker_fee if maker else self.costs.taker_fee
        fill = Fill(client_id=intent.client_id, symbol=intent.symbol, ts_ms=candle.ts_open_ms,
                    side=intent.side, price=price, qty_base=qty, fee_usdt=price * qty * rate,
                    is_maker=maker, purpose=intent.purpose)
        self._event(intent, "filled")
        if self._on_fill is not None:
            self._on_fill(fill)

    def _event(self, intent: OrderIntent, status: str, detail: str = "") -> None:
        if self._on_order is not None:
            self._on_order(OrderEvent(self.clock.now_ms(), intent, status, detail))
