"""What the engine does with the broker during one trade, scripted for the broker-level tests
(rails, user stream, kill CLI) that need a trade on the venue. Anything about protection,
crashes or faults drives the real Engine instead (test_live_protection.py, test_live_crash.py,
test_live_faults.py): a stand-in engine would hide exactly those bugs.

entry fill -> hard stop + TP1/TP2 (reduce-only limits); TP1 fill -> stop to break-even (the new
stop placed before the old is cancelled). Client ids follow cryptobot.engine.broker.client_id.
"""

from __future__ import annotations

from cryptobot.engine.broker import client_id
from cryptobot.model import Fill, OrderIntent, OrderPurpose, OrderType, Side

SYMBOL = "BTC/USDT:USDT"


class TradeDriver:
    def __init__(self, broker, signal_id: str, qty: float, stop: float, tp1: float, tp2: float):
        self.broker, self.signal_id = broker, signal_id
        self.qty, self.stop, self.tp1, self.tp2 = qty, stop, tp1, tp2
        self.fills: list[Fill] = []
        self.events = []
        self.stop_id: str | None = None
        self.stop_errors: list[Exception] = []
        broker.bind(self.on_fill, self.events.append)

    def cid(self, leg: str) -> str:
        return client_id(self.signal_id, leg)

    def enter(self) -> None:
        self.broker.submit(OrderIntent(self.cid("entry"), SYMBOL, Side.BUY, OrderType.MARKET,
                                       self.qty, OrderPurpose.ENTRY, stop_price=self.stop))

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        if fill.purpose is OrderPurpose.ENTRY:
            self.stop_id = self.cid("stop1")
            try:
                self.broker.submit(OrderIntent(self.stop_id, SYMBOL, Side.SELL,
                                               OrderType.STOP_MARKET, self.qty, OrderPurpose.STOP,
                                               self.stop, True))
            except Exception as exc:  # the engine records it; the broker closed the position
                self.stop_errors.append(exc)
                return
            half = round(self.qty / 2, 3)
            self.broker.submit(OrderIntent(self.cid("tp1"), SYMBOL, Side.SELL, OrderType.LIMIT,
                                           half, OrderPurpose.TP1, self.tp1, True))
            self.broker.submit(OrderIntent(self.cid("tp2"), SYMBOL, Side.SELL, OrderType.LIMIT,
                                           round(self.qty - half, 3), OrderPurpose.TP2, self.tp2,
                                           True))
        elif fill.purpose is OrderPurpose.TP1:
            entry = next(f.price for f in self.fills if f.purpose is OrderPurpose.ENTRY)
            new_id = self.cid("stop2")
            self.broker.replace_stop(self.stop_id, OrderIntent(
                new_id, SYMBOL, Side.SELL, OrderType.STOP_MARKET,
                round(self.qty - fill.qty_base, 3), OrderPurpose.STOP, entry, True))
            self.stop_id = new_id
