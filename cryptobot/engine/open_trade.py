"""The engine's trade state: a pending entry, the open trade, and
how an open trade is rebuilt from a broker's state after a restart."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptobot.clock import iso_utc
from cryptobot.model import (
    Fill,
    GateDecision,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Position,
    PositionSide,
    Signal,
    Trade,
    TradeLeg,
)

_QTY_EPS = 1e-12
EXIT_PURPOSES = (OrderPurpose.TIME_EXIT, OrderPurpose.FLATTEN)  # the market exits


@dataclass(slots=True)
class PendingEntry:
    """An entry order sent and not done yet: `qty` ordered, `filled` so far (a venue may fill
    it in several trades; an IOC entry may end with less than ordered)."""

    signal: Signal
    stop_price: float
    atr: float
    gate: GateDecision | None
    qty: float = math.inf  # unknown after a restart: the broker's "filled" event ends it
    filled: float = 0.0
    side: PositionSide = PositionSide.LONG

    @property
    def entry_id(self) -> str:
        return self.signal.signal_id + "-entry"

    def complete(self) -> bool:
        return self.filled >= self.qty * (1.0 - 1e-9)


@dataclass(slots=True)
class OpenTrade:
    """The engine's open position and its working orders' ids."""

    signal_id: str
    entry_ms: int
    entry_price: float
    qty_base: float
    initial_stop: float
    entry_fee_usdt: float
    gate: GateDecision | None  # None for a position restored after a restart
    remaining_qty: float
    stop_price: float
    stop_id: str | None = None
    stop_kind: str = "stop"
    stop_count: int = 0
    tp_ids: list[str] = field(default_factory=list)
    tp1_done: bool = False
    best_close: float | None = None  # the most favourable signal close since the entry
    atr: float | None = None
    legs: list[TradeLeg] = field(default_factory=list)
    funding_usdt: float = 0.0
    closing: bool = False  # a market exit is working
    stop_qty: float = 0.0  # what the working stop covers
    targets_owed: bool = False  # the entry is done; its take-profits wait for a stop
    target_legs: tuple[str, ...] = ("tp1", "tp2")  # ... those, not before `targets_at_ms`
    targets_at_ms: int | None = None
    exit_count: int = 0  # market exits accepted so far (each gets its own client id)
    # (price, qty) of a stop, qty of a market exit, whose answer was lost: its id is reused
    # only for the same order (the venue may have it)
    unanswered_stop: tuple[float, float] | None = None
    unanswered_exit: float | None = None
    side: PositionSide = PositionSide.LONG
    # the entry quantity the venue's answer says has executed (0: none told); what of it has
    # no fill yet is held all the same, and stops and market exits cover it (`cover_qty`)
    entry_executed: float = 0.0

    def note_close(self, close: float) -> None:
        """A signal close since the entry: the highest (a long) or lowest (a short) is kept."""
        if self.best_close is None or self.side.sign * (close - self.best_close) > 0:
            self.best_close = close

    def beyond_stop(self, price: float) -> bool:
        """`price` is at or past the stop (below a long's, above a short's)."""
        return self.side.sign * (price - self.stop_price) <= 0
    # protection that is owed: a stop price not yet accepted, a market exit not yet accepted
    wanted_stop: float | None = None
    wanted_exit: OrderPurpose | None = None
    protect_failures: int = 0
    retry_at_ms: int | None = None

    @property
    def entry_unread(self) -> float:
        """Entry quantity the venue has executed whose fills have not come in yet."""
        return max(0.0, self.entry_executed - self.qty_base)

    @property
    def cover_qty(self) -> float:
        """What is held on the venue: what is left of the fills, and the entry's unread part."""
        return self.remaining_qty + self.entry_unread

    def add_entry(self, fill: Fill) -> None:
        """Another trade of the entry order: the position is the sum of its fills (the first
        one dates the trade when it was opened from the entry's answer)."""
        if self.qty_base <= 0:
            self.entry_ms = fill.ts_ms
        qty = self.qty_base + fill.qty_base
        self.entry_price = (self.entry_price * self.qty_base + fill.price * fill.qty_base) / qty
        self.qty_base = qty
        self.remaining_qty += fill.qty_base
        self.entry_fee_usdt += fill.fee_usdt

    def stop_covers(self) -> bool:
        """The working stop covers everything held."""
        return (self.stop_id is not None
                and self.stop_qty >= self.cover_qty * (1.0 - 1e-9) - _QTY_EPS)

    def add_exit(self, fill: Fill) -> bool:
        """An exit fill becomes a leg; True when nothing is left."""
        self.legs.append(exit_leg(fill, self.stop_kind))
        self.remaining_qty -= fill.qty_base
        return self.remaining_qty <= _QTY_EPS * max(1.0, self.qty_base)

    def finished(self, symbol: str) -> Trade:
        return Trade(self.signal_id, symbol, self.side.entry_side, self.entry_ms, self.entry_price,
                     self.qty_base, self.initial_stop, tuple(self.legs), self.entry_fee_usdt,
                     self.funding_usdt)


def exit_leg(fill: Fill, stop_kind: str = "stop") -> TradeLeg:
    """An exit fill as a trade's leg; a stop's leg is named by the stop's kind at the time."""
    reason = {OrderPurpose.STOP: stop_kind, OrderPurpose.TP1: "tp1", OrderPurpose.TP2: "tp2",
              OrderPurpose.TIME_EXIT: "time_stop", OrderPurpose.FLATTEN: "flatten"}[fill.purpose]
    return TradeLeg(fill.ts_ms, fill.price, fill.qty_base, fill.fee_usdt, reason)


def open_position_summary(trade: OpenTrade, last_price: float | None) -> dict[str, Any]:
    """A position still open when a run ends, as plain data for the summary.

    `realised_usdt` is the cash the position has already moved (entry fee, exits so far and
    their fees, funding): it is paid, so it counts in the run's fees and equity. The price move
    of what is still held is `unrealised_pnl_usdt` at the last close, shown apart and not
    booked, so that a result does not hinge on where the data happens to stop."""
    sign = trade.side.sign
    gross = sum(sign * (leg.price - trade.entry_price) * leg.qty_base for leg in trade.legs)
    fees = trade.entry_fee_usdt + sum(leg.fee_usdt for leg in trade.legs)
    unrealised = (None if last_price is None
                  else sign * (last_price - trade.entry_price) * trade.remaining_qty)
    return {
        "signal_id": trade.signal_id,
        "side": trade.side.value,
        "entry_time": iso_utc(trade.entry_ms),
        "entry_price": trade.entry_price,
        "qty": trade.remaining_qty,
        "qty_at_entry": trade.qty_base,
        "stop_price": trade.stop_price,
        "last_price": last_price,
        "unrealised_pnl_usdt": unrealised,
        "entry_fee_usdt": trade.entry_fee_usdt,
        "fees_usdt": fees,
        "funding_usdt": trade.funding_usdt,
        "realised_usdt": gross - fees - trade.funding_usdt,
    }


def restore_trade(position: Position, working_orders: Iterable[OrderIntent],
                  entry_qty_base: float | None, entry_fee_usdt: float,
                  legs: tuple[TradeLeg, ...]) -> OpenTrade:
    """An open trade after a restart, from `position` (its store's row) and the broker's
    working orders of its signal: any stop-market order is its stop, `-tp1`/`-tp2` its targets,
    a working market exit means it is being closed, `-stopN` numbers go on. `entry_qty_base`
    (the size at entry) tells whether TP1 has filled; `legs` are the exits already filled
    (from the broker's fills), so the finished trade is whole."""
    qty_at_entry = entry_qty_base if entry_qty_base is not None else position.qty_base
    trade = OpenTrade(position.signal_id, position.opened_ms, position.entry_price,
                      qty_at_entry, position.stop_price, entry_fee_usdt, None,
                      position.qty_base, position.stop_price, side=position.side)
    trade.tp1_done = position.qty_base < qty_at_entry * (1.0 - 1e-9)
    trade.legs = list(legs)
    prefix = position.signal_id + "-"
    for intent in working_orders:
        if not intent.client_id.startswith(prefix):
            continue
        leg = intent.client_id[len(prefix):]
        if intent.order_type is OrderType.STOP_MARKET:
            trade.stop_id, trade.stop_price = intent.client_id, intent.price
            trade.stop_qty = intent.qty_base
        elif intent.purpose in (OrderPurpose.TP1, OrderPurpose.TP2):
            trade.tp_ids.append(intent.client_id)
        elif intent.purpose in EXIT_PURPOSES:
            trade.closing = True  # its market exit is working: no second one
        if leg.startswith("stop") and leg[4:].isdigit():
            trade.stop_count = max(trade.stop_count, int(leg[4:]))
    locked_in = trade.side.sign * (trade.stop_price - trade.entry_price)
    if locked_in > 0:
        trade.stop_kind = "trailing_stop"
    elif locked_in == 0:
        trade.stop_kind = "breakeven_stop"
    return trade
