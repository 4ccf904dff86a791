"""The engine's state besides its settings: the OI book, a pending entry, the open trade, and
how an open trade is rebuilt from a broker's state after a restart."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptobot.clock import Clock, iso_utc
from cryptobot.model import (
    GateDecision,
    OpenInterest,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Position,
    Signal,
    TradeLeg,
)


class OpenInterestBook:
    """OI samples in time order; lookups never see a sample later than the clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._ts: list[int] = []
        self._samples: list[OpenInterest] = []

    def add(self, sample: OpenInterest) -> bool:
        """True if the sample was kept."""
        if self._ts and sample.ts_ms <= self._ts[-1]:
            return False  # duplicates and stragglers: the book keeps the first it saw
        self._ts.append(sample.ts_ms)
        self._samples.append(sample)
        return True

    def __len__(self) -> int:
        return len(self._ts)

    def last_at_or_before(self, ts_ms: int) -> OpenInterest | None:
        i = bisect.bisect_right(self._ts, min(ts_ms, self.clock.now_ms())) - 1
        return self._samples[i] if i >= 0 else None


@dataclass(slots=True)
class PendingEntry:
    """An entry order sent, not filled yet."""

    signal: Signal
    stop_price: float
    atr: float
    gate: GateDecision


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
    highest_close: float = float("-inf")
    atr: float | None = None
    legs: list[TradeLeg] = field(default_factory=list)
    funding_usdt: float = 0.0
    closing: bool = False  # a market exit is working


def open_position_summary(trade: OpenTrade, last_price: float | None) -> dict[str, Any]:
    """A position still open when a run ends, as plain data for the summary.

    `realised_usdt` is the cash the position has already moved (entry fee, exits so far and
    their fees, funding): it is paid, so it counts in the run's fees and equity. The price move
    of what is still held is `unrealised_pnl_usdt` at the last close, shown apart and not
    booked, so that a result does not hinge on where the data happens to stop."""
    gross = sum((leg.price - trade.entry_price) * leg.qty_base for leg in trade.legs)
    fees = trade.entry_fee_usdt + sum(leg.fee_usdt for leg in trade.legs)
    unrealised = (None if last_price is None
                  else (last_price - trade.entry_price) * trade.remaining_qty)
    return {
        "signal_id": trade.signal_id,
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
                  legs: tuple[TradeLeg, ...], highest_close: float) -> OpenTrade:
    """An open trade from a stored position and the broker's working orders of its signal:
    any stop-market order is its stop, `-tp1`/`-tp2` its targets; `-stopN` numbers go on."""
    qty_at_entry = entry_qty_base if entry_qty_base is not None else position.qty_base
    trade = OpenTrade(position.signal_id, position.opened_ms, position.entry_price,
                      qty_at_entry, position.stop_price, entry_fee_usdt, None,
                      position.qty_base, position.stop_price, highest_close=highest_close)
    trade.tp1_done = position.qty_base < qty_at_entry * (1.0 - 1e-9)
    trade.legs = list(legs)
    prefix = position.signal_id + "-"
    for intent in working_orders:
        if not intent.client_id.startswith(prefix):
            continue
        leg = intent.client_id[len(prefix):]
        if intent.order_type is OrderType.STOP_MARKET:
            trade.stop_id, trade.stop_price = intent.client_id, intent.price
        elif intent.purpose in (OrderPurpose.TP1, OrderPurpose.TP2):
            trade.tp_ids.append(intent.client_id)
        if leg.startswith("stop") and leg[4:].isdigit():
            trade.stop_count = max(trade.stop_count, int(leg[4:]))
    if trade.stop_price > trade.entry_price:
        trade.stop_kind = "trailing_stop"
    elif trade.stop_price == trade.entry_price:
        trade.stop_kind = "breakeven_stop"
    return trade
