"""The live broker's reconciled state read as a restore's journal (runners/restore.py).

After a restart the live runner hands each symbol's engine `LiveJournal(broker.state, symbol)`
for the one restore that paper runs use too: the open position (with its side, long or short),
its orders with their last status, and its fills. The broker has already reconciled its state
with the exchange, so its working orders are the exchange's.

A position can also close without the engine: on the exchange while the bot was down, or by the
reconciliation at start (its stop already past the price). `trades_closed_away` rebuilds those
trades from their fills, for the runner to book in the run that finds them.
"""

from __future__ import annotations

import logging
import math

from cryptobot.brokers.live.state import LiveFillRow, LiveState, StoredPosition
from cryptobot.engine.open_trade import exit_leg
from cryptobot.model import (
    Fill,
    GateDecision,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Side,
    Signal,
    Trade,
)

log = logging.getLogger("cryptobot.live.restore")


class LiveJournal:
    """`runners.restore.Journal` over `LiveState`; `symbol`: that symbol's positions only (the
    journal of one engine of a run of several symbols)."""

    def __init__(self, state: LiveState, symbol: str | None = None) -> None:
        self.state = state
        self.symbol = symbol

    def open_positions(self) -> list[StoredPosition]:
        return [p for p in self.state.positions() if self.symbol in (None, p.symbol)]

    def pending_entries(self) -> list[tuple[Signal, float, GateDecision | None]]:
        # A live market entry is never left working: the reconciliation at start turns a sent
        # entry into its fills (and a position) or marks it not sent.
        return []

    def orders(self, signal_id: str) -> list[tuple[OrderIntent, str]]:
        return [(row.intent(), row.status) for row in self.state.orders(signal_id=signal_id)]

    def fills(self, signal_id: str) -> list[Fill]:
        return [_fill(row) for row in self.state.fills(signal_id)]

    def entry_gate(self, signal_id: str) -> GateDecision | None:
        return None  # the live state keeps no gate decisions (the run store does)


def _fill(row: LiveFillRow) -> Fill:
    return Fill(client_id=row.client_id, symbol=row.symbol, ts_ms=row.ts_ms, side=Side(row.side),
                price=float(row.price), qty_base=float(row.qty_base),
                fee_usdt=float(row.fee_usdt), is_maker=row.is_maker,
                purpose=OrderPurpose(row.purpose))


def trades_closed_away(state: LiveState) -> list[tuple[Trade, list[Fill]]]:
    """Positions closed without the engine whose trade no run has booked: each trade rebuilt
    from its fills (funding unknown: 0), with the fills no run has recorded; its side is its
    entry fills' (a buy: long, a sell: short)."""
    booked = state.booked_signal_ids()
    still_open = {p.signal_id for p in state.positions()}
    found = []
    for position in state.positions(open_only=False):
        sid = position.signal_id
        if sid in booked or sid in still_open:
            continue
        fills = [_fill(row) for row in state.fills(sid)]
        entries = [f for f in fills if f.purpose is OrderPurpose.ENTRY]
        exits = [f for f in fills if f.purpose is not OrderPurpose.ENTRY]
        qty = sum(f.qty_base for f in entries)
        if not entries or sum(f.qty_base for f in exits) < qty * (1 - 1e-9):
            if entries:  # closed by something that is not ours (a manual close): not booked
                log.warning("%s closed on the exchange without fills of ours for all of it; "
                            "not booked as a trade", sid, extra={"event": "reconcile"})
            continue
        stops = [row.price for row in state.orders(signal_id=sid)
                 if row.order_type == OrderType.STOP_MARKET.value and row.price is not None]
        initial_stop = float(stops[0]) if stops else position.stop_price or math.nan
        trade = Trade(sid, position.symbol, entries[0].side, entries[0].ts_ms,
                      sum(f.price * f.qty_base for f in entries) / qty, qty, initial_stop,
                      tuple(exit_leg(f) for f in exits), sum(f.fee_usdt for f in entries), 0.0)
        found.append((trade, unrecorded_fills(state, sid)))
    return found


def unrecorded_fills(state: LiveState, signal_id: str) -> list[Fill]:
    """The signal's fills that no live run has recorded (they came while no engine was bound:
    a restart's reconciliation, or fills while the bot was down)."""
    recorded = state.recorded_fills(signal_id)
    return [fill for fill in map(_fill, state.fills(signal_id))
            if (fill.client_id, fill.ts_ms, round(fill.qty_base, 12)) not in recorded]
