"""The live broker: the Broker protocol on a real exchange account (ccxt binanceusdm).

- Every order is written to the live state BEFORE it is sent, then placed idempotently by the
  gateway (a doubtful send is looked up by client id before any resend).
- A stop that the venue refuses is retried `live.stop_place_retries` times; if it still cannot
  be placed, the position is closed at market with the reason stored, and the submit raises
  OrderRejectedError (the engine then finds its position already flat).
- Fills come from the venue's user data stream when a `fill_source` is attached and connected
  (user_events.py applies its events, as they happen); otherwise by REST polling (`poll`, run
  from `on_base_candle`). Both paths are de-duplicated by the exchange's trade id; REST also
  catches up after every stream reconnect and at each reconciliation, and records on restart
  the fills that happened while the bot was down.
- Nothing is sent until reconciliation has succeeded (`ready`); see reconcile.py.
- An entry's planned stop (`OrderIntent.stop_price`) is stored with its (not yet open) position
  before the entry is sent, so a restart after the fill but before the stop places that stop,
  not the `live.recovery_stop_pct` fallback.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from cryptobot.brokers.live.gateway import OrderGateway, SentOrder
from cryptobot.brokers.live.rails import check_entry_rails
from cryptobot.brokers.live.reconcile import ReconcileReport, reconcile_with_exchange
from cryptobot.brokers.live.state import OPEN_STATUSES, LiveFillRow, LiveOrderRow, LiveState
from cryptobot.brokers.live.user_events import apply_user_event
from cryptobot.clock import Clock
from cryptobot.config import Settings
from cryptobot.engine.broker import FillHandler, OrderHandler
from cryptobot.engine.recorder import OrderEvent
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import (
    ExchangeError,
    OrderRejectedError,
    ReconciliationError,
    TemporaryExchangeError,
)
from cryptobot.model import Candle, Fill, OrderIntent, OrderPurpose, OrderType, Side

log = logging.getLogger("cryptobot.live")
StepHook = Callable[[str], None]


class FillSource(Protocol):
    """Something that delivers fills as they happen (the user data stream)."""

    connected: bool


def signal_of(client_id: str) -> str:
    """`<signal_id>-<leg>` -> signal_id."""
    return client_id.rsplit("-", 1)[0]


class LiveBroker:
    """`kill_switch` is the run's one switch (the CLI builds it): engaged, no new entries."""

    def __init__(self, gateway: OrderGateway, state: LiveState, settings: Settings, clock: Clock,
                 kill_switch: KillSwitch, on_step: StepHook | None = None) -> None:
        self.gateway = gateway
        self.state = state
        self.settings = settings
        self.clock = clock
        self.kill_switch = kill_switch
        self.on_step = on_step or (lambda step: None)  # crash tests kill the process here
        self.ready = False
        self.last_price: float | None = None
        self.equity_usdt: float | None = None
        self._on_fill: FillHandler | None = None
        self._on_order: OrderHandler | None = None
        self._last_reconcile_ms: int | None = None
        self.fill_source: FillSource | None = None  # while connected, candles skip REST polls
        self.algo_children: dict[str, str] = {}  # a fired stop's market order id -> our id
        self.fills_by_source: Counter[str] = Counter()  # "stream" / "rest" (tests, heartbeat)

    # --- Broker protocol -------------------------------------------------------------------

    def bind(self, on_fill: FillHandler, on_order: OrderHandler) -> None:
        self._on_fill, self._on_order = on_fill, on_order

    def submit(self, intent: OrderIntent) -> None:
        if not self.ready:
            raise ReconciliationError(
                f"{intent.client_id}: not sent: the bot refuses to trade until reconciliation "
                "with the exchange succeeds")
        stored = self.state.order(intent.client_id)
        if stored is not None and stored.status not in ("pending", "rejected", "not_sent"):
            raise OrderRejectedError(f"duplicate client order id {intent.client_id}")
        intent = self._rounded(intent)
        if intent.purpose is OrderPurpose.ENTRY and not intent.reduce_only:
            check_entry_rails(self, intent)
            self._remember_planned_stop(intent)
        if intent.order_type is OrderType.STOP_MARKET:
            self.place_stop(intent, flatten_on_failure=True)
        else:
            self._send(intent)

    def cancel(self, client_id: str) -> None:
        row = self.state.order(client_id)
        if row is None or row.status not in OPEN_STATUSES:
            return
        self.gateway.cancel(row.intent(), None)
        self.state.update_order(client_id, self.clock.now_ms(), status="canceled")
        self.report_order(row.intent(), "canceled")

    def replace_stop(self, old_client_id: str | None, new_intent: OrderIntent) -> None:
        """New stop first; the old one is cancelled only once the new one is on the venue."""
        if not self.ready:
            raise ReconciliationError(f"{new_intent.client_id}: reconciliation has not succeeded")
        self.place_stop(self._rounded(new_intent), flatten_on_failure=False)
        self.on_step("stop_replaced_before_cancel")
        if old_client_id is not None:
            self.cancel(old_client_id)

    def working_orders(self) -> tuple[OrderIntent, ...]:
        return tuple(row.intent() for row in self.state.orders(OPEN_STATUSES))

    def on_base_candle(self, candle: Candle) -> None:
        """Read fills, and reconcile when due. A failure here must not stop the session: the
        stops on the exchange protect what is open, and a failed reconciliation leaves the
        broker refusing new orders until a later candle's attempt succeeds."""
        self.last_price = candle.close
        if self.fill_source is None or not self.fill_source.connected:
            self.catch_up()
        now_ms = self.clock.now_ms()
        interval_ms = self.settings.live.reconcile_interval_s * 1000
        if self._last_reconcile_ms is None or now_ms - self._last_reconcile_ms >= interval_ms:
            try:
                self.reconcile()
            except ReconciliationError as exc:
                log.error("%s; no new orders until it succeeds", exc)

    def reconcile(self) -> ReconcileReport:
        """Make the state and the exchange agree (reconcile.py). Until that has succeeded the
        broker refuses every order; a failure raises ReconciliationError."""
        self.ready = False
        report = reconcile_with_exchange(self)
        self.ready = True
        self._last_reconcile_ms = self.clock.now_ms()
        return report

    def reconcile_soon(self) -> None:
        """Reconcile at the next base candle, whenever the last reconciliation was."""
        self._last_reconcile_ms = None

    def catch_up(self) -> None:
        """Read fills by REST; a failure is logged and retried by the next caller."""
        try:
            self.poll()
        except ExchangeError as exc:
            log.error("reading fills failed (retried next candle): %s", exc)

    def on_user_event(self, event: object) -> None:
        """An order or fill update from the user data stream (see user_events.py)."""
        apply_user_event(self, event)

    # --- placing ---------------------------------------------------------------------------

    def _rounded(self, intent: OrderIntent) -> OrderIntent:
        qty = self.gateway.round_qty(intent.symbol, intent.qty_base)
        if qty <= 0:
            raise OrderRejectedError(f"{intent.client_id}: quantity {intent.qty_base} rounds to 0")
        price = None if intent.price is None else self.gateway.round_price(intent.symbol,
                                                                           intent.price)
        if not intent.reduce_only:
            reference = price or self.reference_price(intent.symbol)
            minimum = self.gateway.min_notional_usdt(intent.symbol)
            if qty * reference < minimum:
                raise OrderRejectedError(
                    f"{intent.client_id}: notional {qty * reference:.2f} USDT is below the "
                    f"market minimum {minimum:g} USDT")
        return replace(intent, qty_base=qty, price=price)

    def _remember_planned_stop(self, intent: OrderIntent) -> None:
        signal_id = signal_of(intent.client_id)
        if intent.stop_price is None or self.state.position(signal_id) is not None:
            return
        stop = self.gateway.round_price(intent.symbol, intent.stop_price)
        self.state.open_position(signal_id, intent.symbol, 0.0, 0.0, stop, self.clock.now_ms())

    def reference_price(self, symbol: str) -> float:
        """The last base candle's close, or the venue's last price before the first candle."""
        if self.last_price is None:
            return self.gateway.last_price(symbol)
        return self.last_price

    def _send(self, intent: OrderIntent) -> SentOrder:
        now_ms = self.clock.now_ms()
        self.state.record_intent(intent, signal_of(intent.client_id), now_ms)
        self.on_step(f"before_send:{intent.purpose.value}")
        try:
            sent = self.gateway.place(intent)
        except OrderRejectedError as exc:
            self.state.update_order(intent.client_id, now_ms, status="rejected", detail=str(exc))
            self.report_order(intent, "rejected", str(exc))
            raise
        self.on_step(f"after_send:{intent.purpose.value}")
        self.state.update_order(intent.client_id, self.clock.now_ms(), status="open",
                                exchange_order_id=sent.exchange_order_id)
        self.report_order(intent, "open")
        if sent.filled_qty > 0 or sent.status == "filled":
            self.poll()
        return sent

    def place_stop(self, intent: OrderIntent, flatten_on_failure: bool) -> None:
        """Send a rounded stop, retried `live.stop_place_retries` times; if it still fails,
        close the position at market (`flatten_on_failure`) or keep the old stop, and raise."""
        signal_id = signal_of(intent.client_id)
        attempts = self.settings.live.stop_place_retries + 1
        last_error: ExchangeError | None = None
        for attempt in range(1, attempts + 1):
            try:
                self._send(intent)
                self.state.update_position(signal_id, stop_price=intent.price)
                return
            except (OrderRejectedError, TemporaryExchangeError) as exc:
                last_error = exc
                log.warning("stop %s attempt %d/%d failed: %s", intent.client_id, attempt,
                            attempts, exc)
        reason = f"stop could not be placed after {attempts} attempts: {last_error}"
        if flatten_on_failure:
            self.flatten(signal_id, reason)
            raise OrderRejectedError(f"{intent.client_id}: {reason}; position closed at market")
        raise OrderRejectedError(f"{intent.client_id}: {reason}; the old stop stays")

    # --- closing ---------------------------------------------------------------------------

    def flatten(self, signal_id: str, reason: str) -> None:
        """Close the signal's position at market, then cancel its other orders."""
        position = self.state.position(signal_id)
        if position is not None and position.qty_base > 0:
            exchange_qty, _ = self.gateway.position_qty(position.symbol)
            qty = min(position.qty_base, max(exchange_qty, 0.0))
            if qty > 0:
                used = len(self.state.orders(signal_id=signal_id))
                intent = OrderIntent(f"{signal_id}-flat{used}", position.symbol, Side.SELL,
                                     OrderType.MARKET, self.gateway.round_qty(position.symbol, qty),
                                     OrderPurpose.FLATTEN, None, True)
                self._send(intent)
            self.state.update_position(signal_id, close_reason=reason)
            log.warning("position %s closed at market: %s", signal_id, reason)
        for row in self.state.orders(OPEN_STATUSES, signal_id=signal_id):
            try:
                self.cancel(row.client_id)
            except ExchangeError as exc:
                log.warning("cancel %s failed: %s", row.client_id, exc)

    def flatten_all(self, reason: str) -> None:
        for position in self.state.positions():
            self.flatten(position.signal_id, reason)
        for row in self.state.orders(OPEN_STATUSES):
            self.cancel(row.client_id)

    # --- fills -----------------------------------------------------------------------------

    def poll(self) -> list[Fill]:
        """Read new fills from the exchange, record them, report them. Returns the new ones."""
        new_fills: list[Fill] = []
        for symbol, since_ms in self._watch_list().items():
            trades = self.gateway.trades_since(symbol, since_ms)
            for trade in sorted(trades, key=lambda t: (t["timestamp"], str(t["id"]))):
                fill = self.ingest_trade(symbol, trade, "rest")
                if fill is not None:
                    new_fills.append(fill)
        return new_fills

    def ingest_trade(self, symbol: str, trade: dict, source: str,
                     row: LiveOrderRow | None = None) -> Fill | None:
        """Record and report one venue trade (ccxt's shape) unless it is known or not ours."""
        if self.state.has_fill(str(trade["id"])):
            return None
        row = row or self._order_for_trade(symbol, trade)
        if row is None:
            return None  # not one of ours (a manual trade): reconciliation reports it
        self.fills_by_source[source] += 1
        return self._record_fill(row, trade)

    def _watch_list(self) -> dict[str, int]:
        """Symbols with our open positions or working orders, and since when to read trades."""
        since: dict[str, int] = {}
        for position in self.state.positions():
            since[position.symbol] = min(since.get(position.symbol, position.opened_ms),
                                         position.opened_ms)
        for row in self.state.orders(OPEN_STATUSES):
            since[row.symbol] = min(since.get(row.symbol, row.created_ms), row.created_ms)
        return {symbol: ms - 600_000 for symbol, ms in since.items()}  # 10 min for clock skew

    def _order_for_trade(self, symbol: str, trade: dict) -> LiveOrderRow | None:
        order_id = str(trade["order"])
        row = self.state.order_by_exchange_id(order_id)
        if row is not None:
            return row
        stop_id = self.algo_children.get(order_id)  # told by the stream's ALGO_UPDATE
        if stop_id is not None and self.state.order(stop_id) is not None:
            return self.state.order(stop_id)
        # A stop's fill belongs to the market order the algo order spawned when it fired.
        for stop in self.state.orders(("open",), symbol=symbol):
            if stop.order_type == OrderType.STOP_MARKET.value:
                found = self.gateway.lookup(stop.intent())
                if found is not None and str(found.info.get("actualOrderId")) == order_id:
                    return stop
        client_id = self.gateway.fetch_order_client_id(symbol, order_id)
        return self.state.order(client_id) if client_id else None

    def _record_fill(self, row: LiveOrderRow, trade: dict) -> Fill:
        fee = float((trade.get("fee") or {}).get("cost") or 0.0)
        fill = Fill(row.client_id, row.symbol, int(trade["timestamp"]), Side(trade["side"]),
                    float(trade["price"]), float(trade["amount"]), fee,
                    trade.get("takerOrMaker") == "maker", OrderPurpose(row.purpose))
        self.state.record_fill(LiveFillRow(
            trade_id=str(trade["id"]), client_id=row.client_id, signal_id=row.signal_id,
            symbol=row.symbol, ts_ms=fill.ts_ms, side=fill.side.value, price=fill.price,
            qty_base=fill.qty_base, fee_usdt=fee, is_maker=fill.is_maker, purpose=row.purpose))
        filled = sum(f.qty_base for f in self.state.fills(row.signal_id)
                     if f.client_id == row.client_id)
        if filled >= float(row.qty_base) - 1e-12 or row.order_type != OrderType.LIMIT.value:
            self.state.update_order(row.client_id, self.clock.now_ms(), status="filled")
        self._apply_to_position(row, fill)
        self.on_step(f"after_fill:{row.purpose}")
        if self._on_fill is not None:
            self._on_fill(fill)
        return fill

    def _apply_to_position(self, row: LiveOrderRow, fill: Fill) -> None:
        position = self.state.position(row.signal_id)
        if fill.side is Side.BUY and not row.reduce_only:
            if position is None or position.qty_base <= 0:
                self.state.open_position(row.signal_id, row.symbol, fill.qty_base, fill.price,
                                         None if position is None else position.stop_price,
                                         fill.ts_ms)
            else:
                qty = position.qty_base + fill.qty_base
                entry = (position.entry_price * position.qty_base
                         + fill.price * fill.qty_base) / qty
                self.state.update_position(row.signal_id, qty_base=qty, entry_price=entry)
            return
        if position is None:
            return
        left = max(0.0, position.qty_base - fill.qty_base)
        self.state.update_position(row.signal_id, qty_base=left)
        if left <= 1e-12:
            self.state.update_position(row.signal_id, close_reason=row.purpose)
            for other in self.state.orders(OPEN_STATUSES, signal_id=row.signal_id):
                if other.client_id != row.client_id:
                    self.cancel(other.client_id)

    def report_order(self, intent: OrderIntent, status: str, detail: str = "") -> None:
        """Tell the bound engine an order's new status (submitted/open/canceled/rejected/filled)."""
        if self._on_order is not None:
            self._on_order(OrderEvent(self.clock.now_ms(), intent, status, detail))
