"""Reconciliation: make the live state and the exchange agree, at start and every few minutes,
over every symbol of the run and every symbol the state holds orders or positions in.

1. orders written but maybe never sent ("pending") are looked up by client id;
2. fills that happened while the bot was down are read and recorded;
3. orders we think are working but the venue no longer lists get their real status;
4. every stored open position is compared with the venue's on its side (the venue's quantity
   is signed, negative for a short): closed there (flat, or on the other side) -> closed here;
   another size -> the venue's size; no stop covering it -> a stop is placed on its closing
   side (the stored stop price, else `live.recovery_stop_pct` below a long's entry, above a
   short's); a stop already past the price, or one that cannot be placed -> closed at market;
5. a position we did not open (long or short) is reported and left alone, unless
   `live.adopt_unknown_positions`.

While it fails the broker refuses to trade (`LiveBroker.reconcile` keeps `ready` False).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.brokers.live.state import OPEN_STATUSES, TRADE_LIST_LAG_MS, LiveState
from cryptobot.clock import Clock
from cryptobot.config import Settings
from cryptobot.errors import (
    CryptobotError,
    ReconciliationError,
    TemporaryExchangeError,
    VenueWaitError,
)
from cryptobot.model import Fill, OrderIntent, OrderPurpose, OrderType, PositionSide

log = logging.getLogger("cryptobot.live.reconcile")
QTY_EPSILON = 1e-9


@dataclass
class ReconcileReport:
    pending_found: list[str] = field(default_factory=list)
    pending_not_sent: list[str] = field(default_factory=list)
    fills_recorded: int = 0
    orders_gone: list[str] = field(default_factory=list)
    closed_while_down: list[str] = field(default_factory=list)
    qty_corrected: list[str] = field(default_factory=list)
    stops_placed: list[str] = field(default_factory=list)
    flattened: list[str] = field(default_factory=list)
    unknown_positions: list[tuple[str, float]] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)


class ReconciledBroker(Protocol):
    """What reconciliation reads and does through the broker."""

    settings: Settings
    clock: Clock
    state: LiveState
    gateway: OrderGateway

    def poll(self) -> list[Fill]: ...

    def cancel(self, client_id: str) -> None: ...

    def flatten(self, signal_id: str, reason: str) -> None: ...

    def reference_price(self, symbol: str) -> float: ...

    def place_recovery_stop(self, intent: OrderIntent) -> None: ...

    def report_order(self, intent: OrderIntent, status: str, detail: str = "",
                     filled_qty: float | None = None) -> None: ...


def reconcile_with_exchange(broker: ReconciledBroker) -> ReconcileReport:
    """Run all steps; any failure is raised as ReconciliationError (VenueWaitError when the
    venue's wait, a ban, refused a call: it is tried again once that is over)."""
    try:
        report = _reconcile(broker)
    except VenueWaitError as exc:  # nothing more can be asked until the venue's wait is over
        log.warning("reconciliation waits for the exchange: %s", exc)
        raise VenueWaitError(f"reconciliation with the exchange: {exc}", exc.wait_s) from None
    except CryptobotError as exc:
        log.error("reconciliation failed: %s", exc)
        raise ReconciliationError(f"reconciliation with the exchange failed: {exc}") from None
    log.info("reconciled: %s", report)
    return report


def _reconcile(broker: ReconciledBroker) -> ReconcileReport:
    state, gateway, report = broker.state, broker.gateway, ReconcileReport()
    for row in state.orders(("pending",)):
        found = gateway.lookup(row.intent())
        if found is None:
            detail = "never reached the exchange (found at reconciliation)"
            state.update_order(row.client_id, broker.clock.now_ms(), status="not_sent",
                               detail=detail)
            broker.report_order(row.intent(), "rejected", detail)  # the engine stops waiting
            report.pending_not_sent.append(row.client_id)
        else:
            state.update_order(row.client_id, broker.clock.now_ms(), status="open",
                               exchange_order_id=found.exchange_order_id)
            broker.report_order(row.intent(), "open", filled_qty=found.filled_qty)
            report.pending_found.append(row.client_id)
    report.fills_recorded = len(broker.poll())
    symbols = set(broker.settings.market.symbols) | {p.symbol for p in state.positions()} | {
        row.symbol for row in state.orders(("open",))}
    gone: dict[str, tuple[OrderIntent, str]] = {}
    for symbol in sorted(symbols):
        on_venue = {o.get("clientOrderId") for o in gateway.open_orders(symbol)}
        for row in state.orders(("open",), symbol=symbol):
            if row.client_id in on_venue:
                continue
            found = gateway.lookup(row.intent())
            status = "canceled" if found is None else found.status
            if status != "open":
                gone[row.client_id] = (row.intent(), status)
    if gone:  # their last fills first, then their end, so the engine sees them in that order
        report.fills_recorded += len(broker.poll())
    for client_id, (intent, status) in gone.items():
        row = state.order(client_id)
        if row is None or row.status not in OPEN_STATUSES:
            continue  # its fills ended it already
        state.update_order(client_id, broker.clock.now_ms(), status=status,
                           detail="ended on the exchange (found at reconciliation)")
        broker.report_order(intent, "canceled" if status == "expired" else status)
        report.orders_gone.append(client_id)
    venue = {symbol: (qty, entry) for symbol, qty, entry in gateway.all_positions()}
    for position in state.positions():
        qty = position.side.sign * venue.get(position.symbol, (0.0, 0.0))[0]  # on its side
        if qty <= QTY_EPSILON:
            state.update_position(position.signal_id, qty_base=0.0,
                                  close_reason="closed on the exchange while the bot was away")
            report.closed_while_down.append(position.signal_id)
            for row in state.orders(("open",), signal_id=position.signal_id):
                broker.cancel(row.client_id)
            continue
        if abs(qty - position.qty_base) > QTY_EPSILON:
            log.warning("%s: stored %.8g, exchange %.8g: using the exchange's",
                        position.signal_id, position.qty_base, qty, extra={"event": "reconcile"})
            state.update_position(position.signal_id, qty_base=qty)
            report.qty_corrected.append(position.signal_id)
        _ensure_stop(broker, position.signal_id, position.symbol, position.side, qty,
                     position.stop_price, position.entry_price, report)
    if report.flattened or report.stops_placed:  # a flatten may have closed one
        venue = {symbol: (qty, entry) for symbol, qty, entry in gateway.all_positions()}
    # the bot's own: open positions, and entries whose fills are not read yet (still open, or
    # filled on the venue while its trade list lags)
    awaiting = state.entries_awaiting_fills(broker.clock.now_ms() - TRADE_LIST_LAG_MS)
    known = {p.symbol for p in state.positions()} | {row.symbol for row in awaiting} | {
        row.symbol for row in state.orders(OPEN_STATUSES) if row.purpose == "entry"}
    for symbol, (qty, entry) in venue.items():
        if symbol in known or abs(qty) <= QTY_EPSILON:
            continue
        report.unknown_positions.append((symbol, qty))
        if not broker.settings.live.adopt_unknown_positions:
            log.warning("unknown position %s %.8g on the exchange: reported and left alone "
                        "(live.adopt_unknown_positions is off)", symbol, qty,
                        extra={"event": "reconcile"})
            continue
        side = PositionSide.LONG if qty > 0 else PositionSide.SHORT
        # one id per adopted position, even two found in one reconciliation
        signal_id = f"adopt{broker.clock.now_ms()}-{len(report.adopted) + 1}"
        state.open_position(signal_id, symbol, abs(qty), entry, None, broker.clock.now_ms(),
                            adopted=True, side=side)
        report.adopted.append(signal_id)
        _ensure_stop(broker, signal_id, symbol, side, abs(qty), None, entry, report)
    return report


def protect_first(broker: ReconciledBroker) -> ReconcileReport:
    """At start, before anything slower (pending look-ups, fills, orders gone): each position
    the store holds (or an entry it sent, fills unread) that the venue holds on its side, and
    that no stop working on the venue covers, gets its stop now. Two or three requests
    (positions, each such symbol's open stops), read on the protective schedule; the full
    reconciliation follows. A temporary failure is raised as it is (the start tries again);
    any other as ReconciliationError."""
    report = ReconcileReport()
    try:
        _protect_first(broker, report)
    except (TemporaryExchangeError, ReconciliationError):
        raise
    except CryptobotError as exc:
        raise ReconciliationError(f"protecting open positions at start failed: {exc}") from None
    return report


def _protect_first(broker: ReconciledBroker, report: ReconcileReport) -> None:
    state = broker.state
    stored = state.positions()
    held = {p.signal_id for p in stored}
    for row in state.orders(("pending", "open")):  # an entry whose fills were not read yet
        planned = state.position(row.signal_id) if row.purpose == "entry" else None
        if planned is not None and planned.signal_id not in held:
            stored.append(planned)
    if not stored:
        return
    venue = {symbol: (qty, entry) for symbol, qty, entry
             in broker.gateway.all_positions(protective=True)}
    stops: dict[str, list[dict]] = {}
    for position in stored:
        qty, entry = venue.get(position.symbol, (0.0, 0.0))
        qty *= position.side.sign  # on its side
        if qty <= QTY_EPSILON:
            continue  # flat there: the reconciliation books it
        if position.symbol not in stops:
            stops[position.symbol] = broker.gateway.open_stops(position.symbol, protective=True)
        exit_side = position.side.exit_side.value
        covered = sum(float(o.get("amount") or 0.0) for o in stops[position.symbol]
                      if o.get("reduceOnly") and o.get("side") == exit_side)
        if covered < qty - QTY_EPSILON:
            _place_stop(broker, position.signal_id, position.symbol, position.side, qty,
                        position.stop_price, position.entry_price or entry, report, [])


def _ensure_stop(broker: ReconciledBroker, signal_id: str, symbol: str, side: PositionSide,
                 qty: float, stop_price: float | None, entry_price: float,
                 report: ReconcileReport) -> None:
    """`qty`: the position's size on `side`. Its stops are on the closing side: a sell below
    the price for a long, a buy above it for a short."""
    stops = [row for row in broker.state.orders(("open",), signal_id=signal_id, symbol=symbol)
             if row.order_type == OrderType.STOP_MARKET.value and row.side == side.exit_side.value]
    if sum(float(row.qty_base) for row in stops) >= qty - QTY_EPSILON:
        return
    _place_stop(broker, signal_id, symbol, side, qty, stop_price, entry_price, report, stops)


def _place_stop(broker: ReconciledBroker, signal_id: str, symbol: str, side: PositionSide,
                qty: float, stop_price: float | None, entry_price: float,
                report: ReconcileReport, replaced: list) -> None:
    """A stop for all of `qty` (then the `replaced` smaller ones go), or a close at market if
    it would trigger at once."""
    price = stop_price or entry_price * (1 - side.sign * broker.settings.live.recovery_stop_pct)
    last = broker.reference_price(symbol)
    if side.sign * (price - last) >= 0:  # it would trigger at once
        where = "above" if side is PositionSide.LONG else "below"
        broker.flatten(signal_id, f"stop {price:g} is already {where} the price {last:g}")
        report.flattened.append(signal_id)
        return
    revision = len(broker.state.orders(signal_id=signal_id))
    intent = OrderIntent(f"{signal_id}-rstop{revision}", symbol, side.exit_side,
                         OrderType.STOP_MARKET, broker.gateway.round_qty(symbol, qty),
                         OrderPurpose.STOP, broker.gateway.round_price(symbol, price), True)
    log.warning("%s: no stop covers %.8g on the exchange; placing %s at %g",
                signal_id, qty, intent.client_id, intent.price, extra={"event": "reconcile"})
    broker.place_recovery_stop(intent)
    report.stops_placed.append(intent.client_id)
    for row in replaced:
        broker.cancel(row.client_id)
