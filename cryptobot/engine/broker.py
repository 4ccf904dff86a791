"""The Broker protocol: the one execution interface, simulated (paper.py) or live.

The engine is the broker's only client. It works like this:

- `bind(on_fill, on_order)` once, before anything else. The broker reports every fill through
  `on_fill(Fill)` and every order status change through `on_order(OrderEvent)`
  (status: submitted, open, canceled, rejected, filled). Fills may arrive from inside
  `on_base_candle` (paper: resolved on that candle's prices) or at any time from the venue's
  user-data stream (live: the runner calls `engine.on_fill` or the bound handler directly).
- `submit(intent)`: place an order. Market orders fill at the next available price; a
  reduce-only STOP_MARKET triggers on the last (or mark) price; reduce-only LIMIT orders are the
  take-profits. An entry carries its planned stop in `intent.stop_price` (a broker restarted
  mid-entry can still protect the fill). Raises `cryptobot.errors.OrderRejectedError` (or
  another `ExchangeError`) when the venue refuses, `TemporaryExchangeError` when its answer
  never came (the order may be there: the broker looks it up before sending that client id
  again, and reports what it finds). The engine's protection (engine/protection.py) retries a
  refused stop or exit and falls back to a flatten; a position's first stop goes through
  `submit`, a move or a resize through `replace_stop`.
- `submit_batch(intents)`: place several orders at once (the take-profits, reduce-only limits,
  once the stop works); each one's outcome, in order: None (accepted) or the error `submit`
  would have raised for it. One item can be refused while the others are accepted. Paper
  submits them in turn; live sends them in one request (Binance's batchOrders).
- `cancel(client_id)`: cancel a working order; unknown or already-done ids are ignored.
- `replace_stop(old_client_id, new_intent)`: move a stop safely: the new stop is placed
  FIRST and the old one is cancelled only once the new one is accepted, so a position is never
  left without a stop. If placing the new stop fails, the old one stays and the error is raised.
- `working_orders()`: the orders still working, in submission order (`Engine.restore_position`
  reads a restarted position's stop and targets from them).
- `on_base_candle(candle)`: called by the engine with every closed base candle, after the clock
  has been advanced to `candle.ts_close_ms`. The paper broker resolves fills on it (market
  orders at its open, then stop before targets); a live broker needs nothing here.

Client ids are deterministic: `<signal_id>-<leg>` (entry, stop1, stop2, ..., tp1, tp2, time,
flat), at most 36 characters, so a restarted process recognises its own orders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from cryptobot.engine.recorder import OrderEvent
from cryptobot.errors import ExchangeError
from cryptobot.model import Candle, Fill, OrderIntent

FillHandler = Callable[[Fill], None]
OrderHandler = Callable[[OrderEvent], None]

MAX_CLIENT_ID_CHARS = 36


def client_id(signal_id: str, leg: str) -> str:
    """The deterministic client order id of one leg of a signal's trade."""
    text = f"{signal_id}-{leg}"
    if len(text) > MAX_CLIENT_ID_CHARS:
        raise ValueError(f"client id {text!r} is longer than {MAX_CLIENT_ID_CHARS} characters")
    return text


def signal_of(client_id: str) -> str:
    """`<signal_id>-<leg>` -> signal_id (signal ids may hold dashes, legs do not)."""
    return client_id.rsplit("-", 1)[0]


class Broker(Protocol):
    def bind(self, on_fill: FillHandler, on_order: OrderHandler) -> None: ...

    def submit(self, intent: OrderIntent) -> None: ...

    def submit_batch(self, intents: Sequence[OrderIntent]) -> list[ExchangeError | None]: ...

    def cancel(self, client_id: str) -> None: ...

    def replace_stop(self, old_client_id: str | None, new_intent: OrderIntent) -> None: ...

    def working_orders(self) -> tuple[OrderIntent, ...]: ...

    def on_base_candle(self, candle: Candle) -> None: ...
