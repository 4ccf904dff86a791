"""The live broker's fills: venue trades -> recorded fills, the stored position, the engine.

Fills arrive by REST (`poll`) and from the user data stream (user_events.py); both go through
`ingest_trade`, de-duplicated by the exchange's trade id. Each fill is stored, applied to the
stored position, and then handed to the engine; an order whose fills reach its size (or a
reduce-only stop or exit that closed the position) is then reported "filled". Once the engine
has booked a close, the position's other working orders are cancelled.

A base class of `LiveBroker` (broker.py), kept apart so each file stays small.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from cryptobot.brokers.live.gateway import OrderGateway
from cryptobot.brokers.live.state import (
    OPEN_STATUSES,
    TRADE_LIST_LAG_MS,
    LiveFillRow,
    LiveOrderRow,
    LiveState,
)
from cryptobot.clock import Clock
from cryptobot.model import Fill, OrderIntent, OrderPurpose, OrderType, PositionSide, Side


class LiveFills:
    """The fill half of `LiveBroker` (it provides the attributes below)."""

    state: LiveState
    gateway: OrderGateway
    clock: Clock
    on_step: Callable[[str], None]
    algo_children: dict[str, str]
    fills_by_source: Counter[str]

    def deliver_fill(self, fill: Fill) -> None: ...

    def cancel(self, client_id: str) -> None: ...

    def report_order(self, intent: OrderIntent, status: str, detail: str = "",
                     filled_qty: float | None = None) -> None: ...

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
        awaiting = self.state.entries_awaiting_fills(self.clock.now_ms() - TRADE_LIST_LAG_MS)
        for row in [*self.state.orders(OPEN_STATUSES), *awaiting]:
            since[row.symbol] = min(since.get(row.symbol, row.created_ms), row.created_ms)
        return {symbol: ms - 600_000 for symbol, ms in since.items()}  # 10 min for clock skew

    def _order_for_trade(self, symbol: str, trade: dict) -> LiveOrderRow | None:
        order_id = str(trade["order"])
        row = self.state.order_by_exchange_id(symbol, order_id)
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
        flat = self._apply_to_position(row, fill)
        done = filled >= float(row.qty_base) * (1 - 1e-9) - 1e-12 or (
            flat and row.reduce_only and row.order_type != OrderType.LIMIT.value)
        if done:  # (a reduce-only stop or exit that closed less than its size is done too)
            self.state.update_order(row.client_id, self.clock.now_ms(), status="filled")
        self.on_step(f"after_fill:{row.purpose}")
        self.deliver_fill(fill)
        if done:
            self.report_order(row.intent(), "filled")
        if flat:  # the engine has booked the close: what else works for it goes
            for other in self.state.orders(OPEN_STATUSES, signal_id=row.signal_id):
                self.cancel(other.client_id)
        return fill

    def _apply_to_position(self, row: LiveOrderRow, fill: Fill) -> bool:
        """The stored position after this fill; True when it closed it. An entry's fill (not
        reduce-only) opens or grows the position on its side (a buy: long, a sell: short);
        a fill on the other side shrinks it."""
        position = self.state.position(row.signal_id)
        held = position is not None and position.qty_base > 1e-12
        side = PositionSide.of(fill.side)
        if not row.reduce_only and (not held or position.side is side):
            if position is None or position.qty_base <= 0:
                self.state.open_position(row.signal_id, row.symbol, fill.qty_base, fill.price,
                                         None if position is None else position.stop_price,
                                         fill.ts_ms, side=side)
            else:
                qty = position.qty_base + fill.qty_base
                entry = (position.entry_price * position.qty_base
                         + fill.price * fill.qty_base) / qty
                self.state.update_position(row.signal_id, qty_base=qty, entry_price=entry)
            return False
        if not held or position.side is side:
            return False  # a reduce-only fill on the position's own side cannot be ours
        left = max(0.0, position.qty_base - fill.qty_base)
        self.state.update_position(row.signal_id, qty_base=left)
        if left > 1e-12:
            return False
        self.state.update_position(row.signal_id, close_reason=row.purpose)
        return True
