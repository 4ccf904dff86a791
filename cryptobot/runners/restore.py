"""One restore for paper and live: hand a restarted engine the trade its journal holds.

A journal is the bot's own record of its positions, orders and fills: the live broker's state
(brokers/live/restore.py adapts it) or a paper run's store (`RunJournal`). From it the engine
gets back the open position with its stop (the working stop order, else the planned one), its
take-profits and any working market exit (from the broker's working orders), the size and fees
at entry, the exit legs already filled (so TP1, break-even and the trade's PnL are whole), the
stop numbering so far (a restored trade never reuses a client id), the stop it started with,
the gate decision it entered under, and the funding it paid; the highest signal close since
the entry and the ATR come from the candles the engine holds. An entry sent and not filled yet
comes back as a pending entry.

`RunJournal` also tells a history replay where the run's positions were over time
(`engine/restart.py`'s `PositionHistory`), when each closed trade was booked, and how far the
run got (`handled_until_ms`). A run of several symbols restores each symbol's engine from its
own journal (`RunJournal.of_symbol`) and knows how far each symbol got (`handled_by_symbol`);
its equity is the run's, from every symbol's trades.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptobot.engine.broker import signal_of
from cryptobot.engine.open_trade import EXIT_PURPOSES, exit_leg
from cryptobot.engine.recorder import OrderEvent
from cryptobot.model import (
    Candle,
    Fill,
    GateDecision,
    HeldPosition,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Position,
    PositionSide,
    Signal,
    SignalStatus,
    Trade,
    TradeLeg,
)

log = logging.getLogger("cryptobot.restore")

WORKING_STATUSES = ("pending", "submitted", "open")  # what the order's last event said
_QTY_EPS = 1e-12


class Journal(Protocol):
    def open_positions(self) -> Sequence[HeldPosition]: ...

    def pending_entries(self) -> Sequence[tuple[Signal, float, GateDecision | None]]:
        """Entries sent and not filled: (signal, planned stop, gate decision)."""
        ...

    def orders(self, signal_id: str) -> Sequence[tuple[OrderIntent, str]]:
        """Each order of the signal once, in the order sent, with its last known status."""
        ...

    def fills(self, signal_id: str) -> Sequence[Fill]: ...

    def entry_gate(self, signal_id: str) -> GateDecision | None: ...


class RestoringEngine(Protocol):
    """The engine, as far as a restore needs it (`engine/restart.py`)."""

    symbol: str

    def restore_position(self, position: Position, *, entry_qty_base: float | None = None,
                         entry_fee_usdt: float = 0.0, legs: tuple[TradeLeg, ...] = (),
                         stop_count: int | None = None, best_close: float | None = None,
                         initial_stop: float | None = None, gate: GateDecision | None = None,
                         funding_usdt: float = 0.0,
                         target_prices: Mapping[OrderPurpose, float] | None = None,
                         exit_count: int = 0) -> None: ...

    def restore_entry(self, signal: Signal, stop_price: float, gate: GateDecision | None,
                      side: PositionSide = PositionSide.LONG) -> None: ...


def restore_open_position(engine: RestoringEngine, journal: Journal,
                          funding_usdt: Mapping[str, float] | None = None) -> str | None:
    """Hand the engine the journal's open position (or pending entry) in its symbol; returns
    its signal id (None when there is none, or when no stop price is known). The broker must
    already hold the working orders (live: reconciled from the exchange; paper: put back from
    the journal). `funding_usdt`: what each position paid while the run replayed its history."""
    for held in journal.open_positions():
        if held.symbol != engine.symbol:
            continue
        orders = journal.orders(held.signal_id)
        stops = [intent.price for intent, status in orders if status in WORKING_STATUSES
                 and intent.order_type is OrderType.STOP_MARKET]
        stop_price = stops[-1] if stops else held.stop_price
        if stop_price is None:
            log.warning("%s: no stop price known; left to the broker's protection",
                        held.signal_id)
            return None
        first_stop = next((intent.price for intent, _ in orders
                           if intent.order_type is OrderType.STOP_MARKET), None)
        fills = journal.fills(held.signal_id)
        entries = [f for f in fills if f.purpose is OrderPurpose.ENTRY]
        engine.restore_position(
            Position(held.symbol, held.qty_base, held.entry_price, float(stop_price),
                     held.opened_ms, held.signal_id, held.side),
            entry_qty_base=sum(f.qty_base for f in entries) or None,
            entry_fee_usdt=sum(f.fee_usdt for f in entries),
            legs=tuple(exit_leg(f) for f in fills if f.purpose is not OrderPurpose.ENTRY),
            stop_count=max((stop_number(intent.client_id) for intent, _ in orders), default=0),
            initial_stop=first_stop, gate=journal.entry_gate(held.signal_id),
            funding_usdt=(funding_usdt or {}).get(held.signal_id, 0.0),
            target_prices={intent.purpose: intent.price for intent, _ in orders
                           if intent.purpose in (OrderPurpose.TP1, OrderPurpose.TP2)},
            exit_count=sum(1 for intent, _ in orders if intent.purpose in EXIT_PURPOSES))
        return held.signal_id
    for signal, stop_price, gate in journal.pending_entries():
        if signal.symbol == engine.symbol:
            entry = next((intent for intent, _ in journal.orders(signal.signal_id)
                          if intent.purpose is OrderPurpose.ENTRY), None)
            side = PositionSide.LONG if entry is None else PositionSide.of(entry.side)
            engine.restore_entry(signal, stop_price, gate, side)
            return signal.signal_id
    return None


def stop_number(client_id: str) -> int:
    """`<signal>-stop7` -> 7 (other legs: 0), so a restored trade never reuses a stop's id."""
    leg = client_id.rsplit("-", 1)[-1]
    return int(leg[4:]) if leg.startswith("stop") and leg[4:].isdigit() else 0


@dataclass(frozen=True, slots=True)
class _Span:
    """One entered signal's life: from its entry order to flat (engine clock)."""

    signal_id: str
    sent_ms: int
    done_ms: int | None  # None: still open (or its entry still working)
    fills: tuple[Fill, ...]


class RunJournal:
    """A stored run's journal: its signals, order events, fills and closed trades."""

    def __init__(self, signals: Sequence[tuple[Signal, GateDecision | None]],
                 orders: Sequence[OrderEvent], fills: Sequence[Fill],
                 trades: Sequence[tuple[Trade, GateDecision | None]]) -> None:
        self._rows = (signals, orders, fills, trades)
        self.signals = [signal for signal, _ in signals]
        self._gates = {signal.signal_id: gate for signal, gate in signals}
        self._events = list(orders)
        self._orders: dict[str, dict[str, list]] = {}  # signal -> client id -> [intent, status]
        for event in orders:
            by_id = self._orders.setdefault(signal_of(event.intent.client_id), {})
            by_id.setdefault(event.intent.client_id, [event.intent, event.status])[1] = \
                event.status
        self._fills: dict[str, list[Fill]] = {}
        for fill in fills:
            self._fills.setdefault(signal_of(fill.client_id), []).append(fill)
        self.trades = [trade for trade, _ in trades]
        self._closed = {trade.signal_id for trade in self.trades}
        self._entered = [s for s in self.signals if s.status is SignalStatus.ENTERED]
        self._spans = [span for span in map(self._span, self._entered) if span is not None]

    def of_symbol(self, symbol: str) -> RunJournal:
        """The journal of one of the run's symbols (its positions, orders, fills, trades)."""
        signals, orders, fills, trades = self._rows
        return RunJournal([row for row in signals if row[0].symbol == symbol],
                          [event for event in orders if event.intent.symbol == symbol],
                          [fill for fill in fills if fill.symbol == symbol],
                          [row for row in trades if row[0].symbol == symbol])

    # --- Journal ---------------------------------------------------------------------------

    def open_positions(self) -> list[HeldPosition]:
        held = []
        for signal in self._entered:
            entries = self._entry_fills(signal.signal_id)
            if signal.signal_id in self._closed or not entries:
                continue
            qty = sum(f.qty_base for f in entries)
            price = (entries[0].price if len(entries) == 1
                     else sum(f.price * f.qty_base for f in entries) / qty)
            for fill in self.fills(signal.signal_id):
                if fill.purpose is not OrderPurpose.ENTRY:
                    qty -= fill.qty_base  # as the engine counts what is left
            if qty > _QTY_EPS * max(1.0, qty):
                held.append(HeldPosition(signal.signal_id, signal.symbol, qty, price,
                                            _planned_stop(signal), entries[0].ts_ms,
                                            PositionSide.of(entries[0].side)))
        return held

    def pending_entries(self) -> list[tuple[Signal, float, GateDecision | None]]:
        pending = []
        for signal in self._entered:
            sid = signal.signal_id
            entry = self._orders.get(sid, {}).get(f"{sid}-entry")
            stop = _planned_stop(signal)
            if (sid not in self._closed and not self._entry_fills(sid) and entry is not None
                    and entry[1] in WORKING_STATUSES and stop is not None):
                pending.append((signal, stop, self._gates.get(sid)))
        return pending

    def orders(self, signal_id: str) -> list[tuple[OrderIntent, str]]:
        return [(intent, status) for intent, status in self._orders.get(signal_id, {}).values()]

    def fills(self, signal_id: str) -> list[Fill]:
        return list(self._fills.get(signal_id, ()))

    def entry_gate(self, signal_id: str) -> GateDecision | None:
        return self._gates.get(signal_id)

    # --- for a paper broker and the history replay -------------------------------------------

    def working_orders(self) -> list[OrderIntent]:
        """Every order whose last event left it working, in the order sent."""
        return [intent for by_id in self._orders.values()
                for intent, status in by_id.values() if status in WORKING_STATUSES]

    def position_qty(self) -> float:
        """Signed, as a broker holds it: negative for a short."""
        return sum(held.side.sign * held.qty_base for held in self.open_positions())

    def booked_trades(self) -> list[tuple[Trade, int]]:
        """Each closed trade with the engine time it was booked at: the event of its last
        exit's fill (a fill is stamped with its candle's open, the engine books at its close)."""
        return [(trade, self._booked_ms(trade)) for trade in self.trades]

    def busy(self, now_ms: int) -> bool:
        return any(span.sent_ms < now_ms and (span.done_ms is None or now_ms < span.done_ms)
                   for span in self._spans)

    def held(self, before_ms: int) -> tuple[str, float] | None:
        for span in self._spans:
            qty = 0.0
            for fill in span.fills:
                if fill.ts_ms >= before_ms:
                    break
                qty += fill.qty_base if fill.purpose is OrderPurpose.ENTRY else -fill.qty_base
            if qty > _QTY_EPS * max(1.0, qty):
                sign = PositionSide.of(span.fills[0].side).sign  # the entry's side
                return span.signal_id, sign * qty
        return None

    # --- plumbing ---------------------------------------------------------------------------

    def _entry_fills(self, signal_id: str) -> list[Fill]:
        return [f for f in self.fills(signal_id) if f.purpose is OrderPurpose.ENTRY]

    def _booked_ms(self, trade: Trade) -> int:
        fills = [f for f in self.fills(trade.signal_id) if f.purpose is not OrderPurpose.ENTRY]
        last = fills[-1].client_id if fills else None
        stamps = [e.ts_ms for e in self._events
                  if e.intent.client_id == last and e.status == "filled"]
        return stamps[-1] if stamps else trade.exit_ms

    def _span(self, signal: Signal) -> _Span | None:
        sid = signal.signal_id
        entry_id = f"{sid}-entry"
        events = [e for e in self._events if e.intent.client_id == entry_id]
        if not events:
            return None
        done_ms = None
        if sid in self._closed:
            done_ms = next(b for t, b in self.booked_trades() if t.signal_id == sid)
        elif not self._entry_fills(sid) and events[-1].status not in WORKING_STATUSES:
            done_ms = events[-1].ts_ms  # the entry was refused or cancelled
        return _Span(sid, events[0].ts_ms, done_ms, tuple(self.fills(sid)))


def _planned_stop(signal: Signal) -> float | None:
    stop = signal.metrics.get("stop_price")
    return None if stop is None else float(stop)


def handled_until_ms(start_ms: int, signal_candles: Iterable[Candle],
                     orders: Iterable[OrderEvent],
                     gate_decisions: Iterable[tuple[GateDecision, str]]) -> int:
    """How far a stored run got: every base candle closing by this time was handled. Each
    candle's events are committed together, so the last signal candle, order event or gate
    decision stored was made at (or, for a day's gate decision, before) the close of a candle
    that was handled whole. Base candles after it that left no row are handled again."""
    stamps = [start_ms]
    stamps += [candle.ts_close_ms for candle in signal_candles]
    stamps += [event.ts_ms for event in orders]
    stamps += [decision.ts_ms for decision, _ in gate_decisions]
    return max(stamps)


def handled_by_symbol(start_ms: int, symbols: Sequence[str], signal_candles: Sequence[Candle],
                      orders: Sequence[OrderEvent], signals: Sequence[Signal],
                      gate_decisions: Sequence[tuple[GateDecision, str]],
                      stream_interval_ms: int | None = None) -> dict[str, int]:
    """How far a stored run got, symbol by symbol (see `handled_until_ms`): every base candle of
    the symbol closing by then was handled. One symbol: `handled_until_ms`. Several: each
    symbol's own rows (signal candles, order events, signals) say how far it got. A replay's
    stream is ordered (by close time, ties in the symbols' order) and the session handles it in
    that order, so there (`stream_interval_ms`, its base interval) the last candle that left a
    row also says the candles of the other symbols before it in the stream were handled."""
    if len(symbols) == 1:
        return {symbols[0]: handled_until_ms(start_ms, signal_candles, orders, gate_decisions)}
    own = {symbol: start_ms for symbol in symbols}
    stamps = [(c.symbol, c.ts_close_ms) for c in signal_candles]
    stamps += [(e.intent.symbol, e.ts_ms) for e in orders]
    stamps += [(s.symbol, s.decided_ms) for s in signals]
    for symbol, ts_ms in stamps:
        if symbol in own:
            own[symbol] = max(own[symbol], ts_ms)
    if stream_interval_ms is None:
        return own
    order = {symbol: index for index, symbol in enumerate(symbols)}
    rows = [(ts_ms, order[symbol]) for symbol, ts_ms in own.items() if ts_ms > start_ms]
    if not rows:
        return own
    last_ms, last_index = max(rows)  # the last candle stored, in the stream's order
    return {symbol: max(ts_ms, last_ms if order[symbol] <= last_index
                        else last_ms - stream_interval_ms)
            for symbol, ts_ms in own.items()}


def last_day_started_ms(gate_decisions: Iterable[tuple[GateDecision, str]]) -> int | None:
    """The last UTC day the run had begun: the engine decides the gate once at each day's
    start (trigger "daily")."""
    days = [decision.ts_ms for decision, trigger in gate_decisions if trigger == "daily"]
    return max(days) if days else None
