"""The live broker: the Broker protocol on a real exchange account (ccxt binanceusdm).

- Every order is written to the live state BEFORE it is sent (a commit a crash of the process
  cannot lose; its fsync against a power cut starts on its own thread once the request is
  out: state.py), then placed idempotently by the gateway (a doubtful send is looked up by client
  id before any resend). An order whose outcome stayed unknown keeps its "pending" row: it is
  looked up before it is ever sent again, and the next reconciliation (brought forward)
  reports its fills, or its refusal, to the engine.
- Once the venue has accepted an order, nothing that fails afterwards (reading its fills,
  cancelling the stop it replaces) is reported as its refusal: it is logged and left to the
  next reconciliation.
- A market entry goes out as a limit IOC at most `live.max_entry_slippage_bps` past the last
  price (above it for a buy, below it for a short's sell): what does not fill at once is
  cancelled and reported so ("canceled" after its fills).
- The engine's stops are sent once per `submit` / `replace_stop`; retrying and the fallback are
  the engine's protection (engine/protection.py). Reconciliation's own stops (a position the
  engine does not hold yet) are retried here and close the position at market if refused.
- Fills come from the venue's user data stream when a `fill_source` is attached and connected
  (user_events.py applies its events, as they happen); otherwise by REST polling (`poll`, run
  from `on_base_candle`). Both paths are de-duplicated by the exchange's trade id; REST also
  catches up after every stream reconnect and at each reconciliation, and records on restart
  the fills that happened while the bot was down.
- Nothing is sent until reconciliation has succeeded (`ready`); see reconcile.py.
- One LiveBroker serves every symbol of a run: one gateway (one REST client, its rate-limit
  and ban handling), one live state, one user stream, one reconciliation over all symbols.
  Each symbol's engine talks to its own view (symbol_broker.py), which binds that symbol's
  handlers here: fills and order updates reach the engine of their order's symbol.
- An accepted order is reported with what its answer says has executed (`filled_qty`) before
  its fills are read: the engine puts the stop on an entry's executed part at once.
- An entry's planned stop and side are stored (its position, not open yet) in the entry's own
  write before it is sent: a restart after the fill but before the stop places that stop.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from cryptobot.brokers.live.batch_submit import LiveBatches
from cryptobot.brokers.live.fills import LiveFills
from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.brokers.live.order_shape import price_capped, rounded
from cryptobot.brokers.live.rails import check_entry_rails
from cryptobot.brokers.live.reconcile import ReconcileReport, reconcile_with_exchange
from cryptobot.brokers.live.sent_order import SentOrder
from cryptobot.brokers.live.state import OPEN_STATUSES, LiveOrderRow, LiveState, PlannedPosition
from cryptobot.brokers.live.user_events import apply_user_event
from cryptobot.clock import Clock
from cryptobot.config import Settings
from cryptobot.engine.broker import FillHandler, OrderHandler, signal_of
from cryptobot.engine.recorder import OrderEvent
from cryptobot.engine.risk import KillSwitch
from cryptobot.errors import (
    ExchangeError,
    OrderRejectedError,
    ReconciliationError,
    TemporaryExchangeError,
    VenueWaitError,
)
from cryptobot.model import Candle, Fill, OrderIntent, OrderPurpose, OrderType, PositionSide

log = logging.getLogger("cryptobot.live")
StepHook = Callable[[str], None]
POLL_INTERVAL_MS = 5_000  # REST fill reads between candles while no stream delivers them
RECONCILE_RETRY_MS = 5_000  # a failed reconciliation is tried again this soon


class FillSource(Protocol):
    """Something that delivers fills as they happen (the user data stream)."""

    connected: bool


class LiveBroker(LiveFills, LiveBatches):
    """`kill_switch` is the run's one switch (the CLI builds it): engaged, no new entries."""

    def __init__(self, gateway: OrderGateway, state: LiveState, settings: Settings, clock: Clock,
                 kill_switch: KillSwitch, on_step: StepHook | None = None) -> None:
        self.gateway = gateway
        self.state = state
        # each order's intent made power-cut proof while the order travels (state.py)
        gateway.on_request_out = state.sync_soon
        self.settings = settings
        self.clock = clock
        self.kill_switch = kill_switch
        self.on_step = on_step or (lambda step: None)  # crash tests kill the process here
        self.ready = False
        self.last_prices: dict[str, float] = {}  # each symbol's last base candle close
        self.equity_usdt: float | None = None
        self._fill_handlers: dict[str, FillHandler] = {}  # by symbol; "": any symbol
        self._order_handlers: dict[str, OrderHandler] = {}
        self._last_reconcile_ms: int | None = None
        self._last_poll_ms: int | None = None
        self.fill_source: FillSource | None = None  # while connected, candles skip REST polls
        self.algo_children: dict[str, str] = {}  # a fired stop's market order id -> our id
        self.fills_by_source: Counter[str] = Counter()  # "stream" / "rest" (tests, heartbeat)

    def before_waits(self, hook: Callable[[], None]) -> None:
        """`hook` runs before the broker blocks (a retry's back-off, the venue's Retry-After,
        the request budget): live, what the event caused so far is stored, logged and printed
        then, so nothing is held through a wait (nor lost with it to a kill -9)."""
        self.gateway.before_sleep = hook
        budget = getattr(self.gateway.exchange, "request_budget", None)
        if budget is not None:
            budget.before_sleep = hook

    # --- Broker protocol -------------------------------------------------------------------

    def bind(self, on_fill: FillHandler, on_order: OrderHandler) -> None:
        """One handler pair for the orders of every symbol (a one-symbol client)."""
        self.bind_symbol("", on_fill, on_order)

    def bind_symbol(self, symbol: str, on_fill: FillHandler, on_order: OrderHandler) -> None:
        """The handlers of one symbol's orders and fills (its engine, through its view)."""
        self._fill_handlers[symbol], self._order_handlers[symbol] = on_fill, on_order

    def submit(self, intent: OrderIntent) -> None:
        sendable = self._sendable(intent)
        if sendable is None:
            return
        intent, planned = sendable, None
        if intent.purpose is OrderPurpose.ENTRY and not intent.reduce_only:
            open_positions, own = self.state.open_positions_and(signal_of(intent.client_id))
            check_entry_rails(self, intent, open_positions)
            planned = self._planned_position(intent) if own is None else None  # none stored yet
            intent = price_capped(self.gateway, intent, self.settings.live.max_entry_slippage_bps,
                                  self.reference_price)
        if intent.order_type is OrderType.STOP_MARKET:
            self._send_stop(intent)
        else:
            self._send(intent, planned)

    def _sendable(self, intent: OrderIntent) -> OrderIntent | None:
        """The order lot- and tick-rounded, to send; None when an earlier attempt under its
        client id reached the venue (never sent twice). Refused until reconciliation has
        succeeded."""
        if not self.ready:
            raise ReconciliationError(
                f"{intent.client_id}: not sent: the bot refuses to trade until reconciliation "
                "with the exchange succeeds")
        if self._already_placed(intent):
            return None
        return rounded(self.gateway, intent, self.reference_price)

    def cancel(self, client_id: str) -> None:
        """Cancel a working order; a cancel the venue did not answer is logged and left to the
        next reconciliation (the order is reduce-only: working on, it can only close)."""
        row = self.state.order(client_id)
        if row is None or row.status not in OPEN_STATUSES:
            return
        try:
            self.gateway.cancel(row.intent(), None)
        except ExchangeError as exc:
            log.warning("cancel %s failed (reconciling soon): %s", client_id, exc)
            self.reconcile_soon()
            return
        self.state.update_order(client_id, self.clock.now_ms(), status="canceled")
        self.report_order(row.intent(), "canceled")

    def replace_stop(self, old_client_id: str | None, new_intent: OrderIntent) -> None:
        """New stop first; the old one is cancelled only once the new one is on the venue."""
        if not self.ready:
            raise ReconciliationError(f"{new_intent.client_id}: reconciliation has not succeeded")
        if not self._already_placed(new_intent):
            self._send_stop(rounded(self.gateway, new_intent, self.reference_price))
        self.on_step("stop_replaced_before_cancel")
        if old_client_id is not None:
            self.cancel(old_client_id)

    def working_orders(self) -> tuple[OrderIntent, ...]:
        return tuple(row.intent() for row in self.state.orders(OPEN_STATUSES))

    def on_base_candle(self, candle: Candle) -> None:  # fills; a reconciliation brought forward
        self.last_prices[candle.symbol or self.settings.market.symbol] = candle.close
        self.on_timer(poll=True, routine=False)

    def on_symbol_candle(self, symbol: str, candle: Candle) -> None:
        """A view's candle: the symbols' candles of one close read fills once between them."""
        self.last_prices[symbol] = candle.close
        self.on_timer(poll=self._last_poll_ms != self.clock.now_ms(), routine=False)

    def on_timer(self, poll: bool = False, routine: bool = True) -> None:
        """The live runner's tick (after each candle, and between them): read fills by REST
        while no stream delivers them (`poll`, else every `POLL_INTERVAL_MS`); reconcile when
        due, or brought forward (a stream reconnect, an order's unknown outcome) or retried
        after a failure: only these before a candle reaches the engine (`routine` False), the
        routine one after its orders are out. A failure here must not stop the session: the
        stops protect what is open; a failed reconciliation refuses new orders until a later
        attempt succeeds."""
        now_ms = self.clock.now_ms()
        if self.gateway.venue_wait_s() > 0:
            return  # the venue asked us to wait (a ban): the first tick after it reads all
        streamed = self.fill_source is not None and self.fill_source.connected
        if not streamed and (poll or self._last_poll_ms is None
                             or now_ms - self._last_poll_ms >= POLL_INTERVAL_MS):
            self._last_poll_ms = now_ms
            self.catch_up()
        interval_ms = self.settings.live.reconcile_interval_s * 1000
        last_ms = self._last_reconcile_ms
        if last_ms is None or (now_ms - last_ms >= interval_ms and (routine or not self.ready)):
            try:
                self.reconcile()
            except VenueWaitError as exc:
                self.reconcile_soon()  # at the first tick after the wait
                log.error("%s; no new orders until it succeeds", exc)
            except ReconciliationError as exc:
                self._last_reconcile_ms = now_ms - interval_ms + RECONCILE_RETRY_MS
                log.error("%s; no new orders until it succeeds", exc)

    def after_reconnect(self) -> None:
        """The user stream came back: what it missed is read now, and reconciled soon."""
        self.reconcile_soon()
        self.catch_up()

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

    def _planned_position(self, intent: OrderIntent) -> PlannedPosition | None:
        """An entry's planned stop, stored with its intent when its signal has no position."""
        if intent.stop_price is None:
            return None
        return PlannedPosition(self.gateway.round_price(intent.symbol, intent.stop_price),
                               PositionSide.of(intent.side))

    def reference_price(self, symbol: str) -> float:
        """The symbol's last base candle close, or the venue's last price before its first."""
        last = self.last_prices.get(symbol)
        return self.gateway.last_price(symbol) if last is None else last

    def _already_placed(self, intent: OrderIntent) -> bool:
        """An earlier attempt under this client id reached the venue: found "open" by a
        reconciliation, or "pending" (its answer lost) and found now. The caller reuses an id
        only for the same order (engine/trade_orders.py). An id already used for an order
        that is done, or for another order, is refused."""
        stored = self.state.order(intent.client_id)
        if stored is None or stored.status in ("rejected", "not_sent"):
            return False
        if stored.status == "pending":
            return self._found_sent(stored)
        if stored.status == "open" and stored.purpose == intent.purpose.value \
                and abs(float(stored.qty_base) - self.gateway.round_qty(
                    intent.symbol, intent.qty_base)) <= 1e-12:
            return True
        raise OrderRejectedError(f"duplicate client order id {intent.client_id}")

    def _found_sent(self, row: LiveOrderRow) -> bool:
        """Whether a "pending" order (an earlier send whose outcome was unknown) is on the
        venue; found, it is recorded as sent and its fills are read. An answer that does not
        come raises TemporaryExchangeError: still unknown, nothing is sent."""
        found = self.gateway.lookup(row.intent())
        if found is None:
            return False
        self.state.update_order(row.client_id, self.clock.now_ms(), status="open",
                                exchange_order_id=found.exchange_order_id)
        if row.order_type == OrderType.STOP_MARKET.value:
            self.state.update_position(row.signal_id, stop_price=float(row.price))
        self.report_order(row.intent(), "open", filled_qty=found.filled_qty)
        self._read_fills_of(row.intent(), found)
        return True

    def _send(self, intent: OrderIntent, planned: PlannedPosition | None = None) -> SentOrder:
        now_ms = self.clock.now_ms()
        self.state.record_intent(intent, signal_of(intent.client_id), now_ms, planned)
        self.on_step(f"before_send:{intent.purpose.value}")
        try:
            sent = self.gateway.place(intent)
        except OrderRejectedError as exc:  # raised to the caller, who records it
            self.state.update_order(intent.client_id, now_ms, status="rejected", detail=str(exc))
            raise
        except TemporaryExchangeError:
            self.reconcile_soon()  # outcome unknown: the pending row is looked up there
            raise
        self._accepted(intent, sent)
        return sent

    def _read_fills_of(self, intent: OrderIntent, sent: SentOrder) -> None:
        """Read an accepted order's fills now; an IOC's unfilled rest is reported cancelled
        once all its fills are in (else the next reconciliation does it)."""
        try:
            self.poll()
        except ExchangeError as exc:
            log.warning("%s was accepted; reading its fills failed (reconciling soon): %s",
                        intent.client_id, exc)
            self.reconcile_soon()
            return
        if sent.status not in ("expired", "canceled"):
            return
        row = self.state.order(intent.client_id)
        filled = sum(f.qty_base for f in self.state.fills(signal_of(intent.client_id))
                     if f.client_id == intent.client_id)
        if row is None or row.status not in OPEN_STATUSES:
            return
        if filled < sent.filled_qty - 1e-12:
            self.reconcile_soon()
            return
        detail = f"{filled:g} of {intent.qty_base:g} filled; the rest expired"
        self.state.update_order(intent.client_id, self.clock.now_ms(), status="expired",
                                detail=detail)
        self.report_order(intent, "canceled", detail)

    def _send_stop(self, intent: OrderIntent) -> None:
        self._send(intent)
        self.state.update_position(signal_of(intent.client_id), stop_price=intent.price)

    def place_recovery_stop(self, intent: OrderIntent) -> None:
        """Reconciliation's stop for a position the engine does not hold yet: retried
        `live.stop_place_retries` times; if it still fails, the position is closed at market
        and the error raised."""
        signal_id = signal_of(intent.client_id)
        attempts = self.settings.live.stop_place_retries + 1
        last_error: ExchangeError | None = None
        for attempt in range(1, attempts + 1):
            try:
                self._send_stop(intent)
                return
            except (OrderRejectedError, TemporaryExchangeError) as exc:
                last_error = exc
                log.warning("stop %s attempt %d/%d failed: %s", intent.client_id, attempt,
                            attempts, exc, extra={"event": "protection"})
        reason = f"stop could not be placed after {attempts} attempts: {last_error}"
        self.flatten(signal_id, reason)
        raise OrderRejectedError(f"{intent.client_id}: {reason}; position closed at market")

    # --- closing ---------------------------------------------------------------------------

    def flatten(self, signal_id: str, reason: str) -> None:
        """Close the signal's position at market (a sell for a long, a buy for a short), then
        cancel its other orders."""
        position = self.state.position(signal_id)
        if position is not None and position.qty_base > 0:
            exchange_qty, _ = self.gateway.position_qty(position.symbol)  # signed
            qty = min(position.qty_base, max(position.side.sign * exchange_qty, 0.0))
            if qty > 0:
                used = len(self.state.orders(signal_id=signal_id))
                intent = OrderIntent(f"{signal_id}-close{used}", position.symbol,
                                     position.side.exit_side, OrderType.MARKET,
                                     self.gateway.round_qty(position.symbol, qty),
                                     OrderPurpose.FLATTEN, None, True)
                self._send(intent)
            self.state.update_position(signal_id, close_reason=reason)
            log.warning("position %s closed at market: %s", signal_id, reason,
                        extra={"event": "flatten"})
        for row in self.state.orders(OPEN_STATUSES, signal_id=signal_id):
            try:
                self.cancel(row.client_id)
            except ExchangeError as exc:
                log.warning("cancel %s failed: %s", row.client_id, exc)

    def flatten_all(self, reason: str) -> None:
        """Close every position and cancel every other order, each on its own: a close the
        exchange refuses does not stop the others, and that position keeps its stop. If any
        failed, a TemporaryExchangeError says which (exit 75: a supervisor starts again, and the
        kill switch, still there, closes the rest)."""
        failed, still_held = [], set()
        for position in self.state.positions():
            try:
                self.flatten(position.signal_id, reason)
            except ExchangeError as exc:
                log.error("closing %s failed: %s", position.signal_id, exc)
                failed.append(f"{position.symbol} {position.signal_id}: {exc}")
                still_held.add(position.signal_id)
        for row in self.state.orders(OPEN_STATUSES):
            if row.signal_id in still_held:
                continue  # a position whose close failed keeps its stop
            try:
                self.cancel(row.client_id)
            except ExchangeError as exc:
                log.error("cancel %s failed: %s", row.client_id, exc)
                failed.append(f"cancel {row.client_id}: {exc}")
        if failed:
            raise TemporaryExchangeError(f"{reason}: not everything could be closed: "
                                         + "; ".join(failed))

    def report_order(self, intent: OrderIntent, status: str, detail: str = "",
                     filled_qty: float | None = None) -> None:
        """Tell the engine of the order's symbol its new status (submitted/open/canceled/
        rejected/filled), and what of it the venue's answer says has executed."""
        handler = self._order_handlers.get(intent.symbol) or self._order_handlers.get("")
        if handler is not None:
            handler(OrderEvent(self.clock.now_ms(), intent, status, detail, filled_qty))

    def deliver_fill(self, fill: Fill) -> None:
        """Hand a recorded fill to the engine of its symbol (none bound: only stored)."""
        handler = self._fill_handlers.get(fill.symbol) or self._fill_handlers.get("")
        if handler is not None:
            handler(fill)
