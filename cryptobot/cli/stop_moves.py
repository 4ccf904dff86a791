"""One console line per trade for its stop's moves (a trailing stop re-places its order at each
step: an `open` of the new stop and a `canceled` of the old one, 30 lines for 15 steps).

The first stop a trade places is shown as it is; each later stop of the same trade is a move,
and the replaced one's cancel says nothing new. The moves are told in one line when anything
else of the run is shown (a fill, a trade, another order, a signal) and at the run's end:
stamped with the last move, so lines stay in time order.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptobot.clock import iso_utc
from cryptobot.engine.recorder import OrderEvent
from cryptobot.model import OrderPurpose

_PLACED = ("submitted", "open")


def _minute(ts_ms: int) -> str:
    return iso_utc(ts_ms)[:16] + "Z"


def trade_key(client_id: str) -> str:
    """The signal a client order id belongs to (`<signal>-<leg>`, engine/broker.py)."""
    return client_id.rpartition("-")[0] or client_id


@dataclass
class _StopTrail:
    current_id: str  # the stop order working now
    first_ms: int = 0
    last_ms: int = 0
    from_price: float = 0.0
    to_price: float = 0.0
    moves: int = 0  # moves not told yet


class StopMoves:
    """Decides which stop order events are folded, and says the folded moves when asked."""

    def __init__(self) -> None:
        self._trails: dict[str, _StopTrail] = {}
        self._prices: dict[str, float] = {}  # the price each trade's working stop was told at

    def fold(self, event: OrderEvent) -> bool:
        """True if the event is a move (or a replaced stop's cancel) kept for the fold line."""
        intent = event.intent
        if intent.purpose is not OrderPurpose.STOP:
            return False
        key = trade_key(intent.client_id)
        trail = self._trails.get(key)
        if event.status in _PLACED:
            if trail is None:  # the trade's first stop: shown as it is
                self._trails[key] = _StopTrail(intent.client_id)
                self._prices[key] = intent.price or 0.0
                return False
            if intent.client_id == trail.current_id:
                return True  # `open` after `submitted` of the same order
            if not trail.moves:
                trail.first_ms, trail.from_price = event.ts_ms, self._prices.get(key, 0.0)
            trail.current_id, trail.last_ms = intent.client_id, event.ts_ms
            trail.to_price, trail.moves = intent.price or 0.0, trail.moves + 1
            return True
        if event.status == "canceled" and trail is not None:
            return intent.client_id != trail.current_id  # the replaced one
        return False

    def pending(self) -> list[tuple[int, str]]:
        """The untold moves as (stamp ms, text), by their last move; forgets them."""
        told = []
        for key, trail in self._trails.items():
            if trail.moves:
                times = "once" if trail.moves == 1 else f"{trail.moves} times"
                told.append((trail.last_ms, f"moved {times} since {_minute(trail.first_ms)}: "
                             f"{trail.from_price:,.2f} -> {trail.to_price:,.2f} "
                             f"({trail.current_id})"))
                self._prices[key], trail.moves = trail.to_price, 0
        return sorted(told, key=lambda item: item[0])

    def trade_closed(self, signal_id: str) -> None:
        self._trails.pop(signal_id, None)
        self._prices.pop(signal_id, None)
