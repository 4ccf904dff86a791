"""An order's quantity and price as text on the market's lot and tick: ccxt's
`amount_to_precision` (truncated) and `price_to_precision` (rounded half up), the same text for
every value, in about 40% of the time (each order rounds its quantity and price several times
on the way out).

ccxt's `decimal_to_precision` checks its arguments and rebuilds the tick's Decimal and its
number of decimals on every call, then calls itself to cut the result to those decimals. Here
the tick's Decimal and decimals are made once per tick size (read from the market each call,
so a reloaded market with another tick is followed), and the same Decimal operations run in
the same decimal context, set as ccxt sets it. Markets ccxt does not count in tick sizes (or
pads with zeros), and a value that rounds to nothing (ccxt raises InvalidOrder), go to ccxt
itself. A test holds the two equal over many values.
"""

from __future__ import annotations

import decimal
import re
from typing import Any

from ccxt.base.decimal_to_precision import NO_PADDING, TICK_SIZE

_Tick = tuple[decimal.Decimal, decimal.Decimal, decimal.Decimal]  # tick, half of it, quantum


class TickRounding:
    """`amount(symbol, value)` and `price(symbol, value)` of one ccxt exchange."""

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange
        self._ticks: dict[Any, _Tick | None] = {}

    def amount(self, symbol: str, value: float | str) -> str:
        """ccxt's `amount_to_precision`: down to the lot."""
        return self._text(symbol, value, "amount")

    def price(self, symbol: str, value: float | str) -> str:
        """ccxt's `price_to_precision`: to the nearest tick, half up."""
        return self._text(symbol, value, "price")

    def _text(self, symbol: str, value: float | str, kind: str) -> str:
        tick = self._tick(symbol, kind)
        text = None if tick is None else _on_tick(value, tick, truncate=kind == "amount")
        if text is None or text == "0":  # ccxt's own (and its error)
            return getattr(self.exchange, f"{kind}_to_precision")(symbol, value)
        return text

    def _tick(self, symbol: str, kind: str) -> _Tick | None:
        market = (self.exchange.markets or {}).get(symbol)
        if market is None or self.exchange.precisionMode != TICK_SIZE \
                or self.exchange.paddingMode != NO_PADDING:
            return None
        size = (market.get("precision") or {}).get(kind)
        try:
            return self._ticks[size]
        except KeyError:
            self._ticks[size] = tick = _tick_of(size)
            return tick
        except TypeError:  # not a number ccxt's rounding takes: ccxt says why
            return None


def _tick_of(size: Any) -> _Tick | None:
    """The tick, half of it and the quantum of its decimals, as decimal_to_precision makes
    them for TICK_SIZE (None: a size it refuses or counts otherwise)."""
    if type(size) is str:
        size = float(size)
    if type(size) not in (int, float) or not size > 0:
        return None
    tick = decimal.Decimal(str(size))
    parts = format(tick, "f").rstrip("0").split(".")
    if len(parts) > 1:
        decimals = len(parts[1])
    else:
        match = re.search(r"0+$", parts[0])
        decimals = 0 if match is None else -len(match.group(0))
    if decimals < 0 or decimals >= decimal.getcontext().prec - 2:
        return None  # decimal_to_precision's other branches: left to it
    return tick, tick / 2, decimal.Decimal(10) ** -decimals


def _on_tick(value: float | str, tick: _Tick, truncate: bool) -> str | None:
    """decimal_to_precision(value, TRUNCATE or ROUND, tick, TICK_SIZE, NO_PADDING), then its
    own second pass: ROUND to the tick's decimals (None: a value it would refuse)."""
    size, half, quantum = tick
    context = decimal.getcontext()  # as ccxt sets it, every call
    context.traps[decimal.Underflow] = True
    context.rounding = decimal.ROUND_HALF_UP
    try:
        number = decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        return None
    missing = abs(number) % size
    if missing != 0:
        if truncate:
            number = number + missing if number < 0 else number - missing
        elif number > 0:
            number = number - missing + size if missing >= half else number - missing
        else:
            number = number + missing - size if missing >= half else number + missing
    # ccxt parses format(number, "f") again first: the same value, so the same quantize
    text = format(number.quantize(quantum), "f")
    if text.startswith("-0") and all(c in "0." for c in text[1:]):
        text = text[1:]
    return text.rstrip("0").rstrip(".") if "." in text else text
