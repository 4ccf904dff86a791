"""One symbol's Broker over the run's one LiveBroker.

A run of several symbols has one engine per symbol and ONE LiveBroker (one gateway, live state,
user stream and reconciliation for the account). Each engine talks to its own `SymbolBroker`:
binding it binds that symbol's fill and order handlers on the LiveBroker (which routes every
fill and order update by its order's symbol), its working orders are its symbol's, its candles
set its symbol's last price. Orders go through the shared broker unchanged: their client ids
already name the symbol, and the shared rails see every symbol's positions at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptobot.brokers.live.broker import LiveBroker
from cryptobot.engine.broker import FillHandler, OrderHandler
from cryptobot.errors import ExchangeError
from cryptobot.model import Candle, OrderIntent


class SymbolBroker:
    """The Broker protocol (engine/broker.py) for `symbol`'s engine."""

    def __init__(self, live: LiveBroker, symbol: str) -> None:
        self.live = live
        self.symbol = symbol

    def bind(self, on_fill: FillHandler, on_order: OrderHandler) -> None:
        self.live.bind_symbol(self.symbol, on_fill, on_order)

    def submit(self, intent: OrderIntent) -> None:
        self._own(intent)
        self.live.submit(intent)

    def submit_batch(self, intents: Sequence[OrderIntent]) -> list[ExchangeError | None]:
        for intent in intents:
            self._own(intent)
        return self.live.submit_batch(intents)

    def cancel(self, client_id: str) -> None:
        row = self.live.state.order(client_id)
        if row is not None and row.symbol != self.symbol:
            raise ValueError(f"{client_id} is an order of {row.symbol}, not of {self.symbol}")
        self.live.cancel(client_id)

    def replace_stop(self, old_client_id: str | None, new_intent: OrderIntent) -> None:
        self._own(new_intent)
        self.live.replace_stop(old_client_id, new_intent)

    def working_orders(self) -> tuple[OrderIntent, ...]:
        return tuple(intent for intent in self.live.working_orders()
                     if intent.symbol == self.symbol)

    def on_base_candle(self, candle: Candle) -> None:
        self.live.on_symbol_candle(self.symbol, candle)

    def _own(self, intent: OrderIntent) -> None:
        if intent.symbol != self.symbol:  # an engine's orders are its symbol's: a bug if not
            raise ValueError(f"{intent.client_id}: an order of {intent.symbol} sent through "
                             f"the broker of {self.symbol}")


def symbol_brokers(live: LiveBroker, symbols: tuple[str, ...]) -> dict[str, SymbolBroker]:
    """Each of the run's symbols' broker, in the run's order."""
    return {symbol: SymbolBroker(live, symbol) for symbol in symbols}
