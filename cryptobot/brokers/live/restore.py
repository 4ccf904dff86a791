"""The live broker's reconciled state read as a restore's journal (runners/restore.py).

After a restart the live runner hands `LiveJournal(broker.state)` to the one restore that paper
runs use too: the open position, its orders with their last status, and its fills. The broker
has already reconciled its state with the exchange, so its working orders are the exchange's.
"""

from __future__ import annotations

from cryptobot.brokers.live.state import LiveFillRow, LiveState, StoredPosition
from cryptobot.model import Fill, GateDecision, OrderIntent, OrderPurpose, Side, Signal


class LiveJournal:
    """`runners.restore.Journal` over `LiveState`."""

    def __init__(self, state: LiveState) -> None:
        self.state = state

    def open_positions(self) -> list[StoredPosition]:
        return self.state.positions()

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
