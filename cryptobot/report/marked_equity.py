"""The account's equity marked to market at each signal candle's close.

Cash moves with the stored fills (price and fee); each position held is worth its size at the
symbol's last close; funding is booked when its trade closes, as the trade stores it. So the
curve counts a trade's open loss while it is open, where the stored equity points (daily and at
each exit) are realised only, and its drawdown is the one a trader's account would have shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptobot.model import Candle, Fill, Side, Trade

MAX_CHART_POINTS = 4000  # a long run's curve is thinned for the chart, keeping each dip


@dataclass(frozen=True)
class MarkedEquity:
    points: list[tuple[int, float]]  # (candle close ms, equity USDT), thinned for the chart
    drawdown_pct: list[tuple[int, float]]  # at the same times
    max_drawdown_usdt: float  # over every close, not the thinned points
    max_drawdown_pct: float
    marks: int  # closes marked


def marked_equity(starting_usdt: float, candles: Iterable[Candle], fills: Iterable[Fill],
                  trades: Iterable[Trade]) -> MarkedEquity | None:
    """None without candles. `trades`: for their funding, booked at each trade's exit."""
    by_close: dict[int, list[Candle]] = {}
    for candle in candles:
        by_close.setdefault(candle.ts_close_ms, []).append(candle)
    if not by_close:
        return None
    events = sorted(
        [(fill.ts_ms, 0, fill) for fill in fills]
        + [(trade.exit_ms, 1, trade) for trade in trades if trade.funding_usdt],
        key=lambda event: event[:2])  # stable: fills of one time in the order they came
    cash, held, last_close = starting_usdt, {}, {}
    curve: list[tuple[int, float]] = []
    next_event = 0
    for close_ms in sorted(by_close):
        while next_event < len(events) and events[next_event][0] <= close_ms:
            thing = events[next_event][2]
            if isinstance(thing, Fill):
                signed = thing.qty_base if thing.side is Side.BUY else -thing.qty_base
                cash -= signed * thing.price + thing.fee_usdt
                held[thing.symbol] = held.get(thing.symbol, 0.0) + signed
                last_close.setdefault(thing.symbol, thing.price)
            else:
                cash -= thing.funding_usdt
            next_event += 1
        for candle in by_close[close_ms]:
            last_close[candle.symbol] = candle.close
        worth = sum(qty * last_close[symbol] for symbol, qty in held.items() if qty)
        curve.append((close_ms, cash + worth))
    return _with_drawdown(curve)


def _with_drawdown(curve: list[tuple[int, float]]) -> MarkedEquity:
    peak = float("-inf")
    drawdown: list[tuple[int, float]] = []
    worst_usdt = worst_pct = 0.0
    for ts_ms, value in curve:
        peak = max(peak, value)
        pct = (value / peak - 1.0) * 100.0 if peak > 0 else 0.0
        drawdown.append((ts_ms, pct))
        if peak - value > worst_usdt:
            worst_usdt, worst_pct = peak - value, -pct
    keep = _kept_indices(drawdown)
    return MarkedEquity([curve[i] for i in keep], [drawdown[i] for i in keep],
                        worst_usdt, worst_pct, len(curve))


def _kept_indices(drawdown: list[tuple[int, float]]) -> list[int]:
    """Every index of a short curve; of a long one, each bucket's deepest and last point."""
    if len(drawdown) <= MAX_CHART_POINTS:
        return list(range(len(drawdown)))
    size = -(-len(drawdown) // (MAX_CHART_POINTS // 2))
    kept: set[int] = {0}
    for start in range(0, len(drawdown), size):
        bucket = range(start, min(start + size, len(drawdown)))
        kept.add(min(bucket, key=lambda i: drawdown[i][1]))
        kept.add(bucket[-1])
    return sorted(kept)
