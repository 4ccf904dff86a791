"""The account's equity marked to market at each signal candle's close.

Cash moves with each closed trade's entry and exit legs (price and fee, as the trade stores
them, funding at its exit) and with the stored fills of a position still open at the end; each
position held is worth its size at the symbol's last close. So the curve counts a trade's open
loss while it is open, where the stored equity points (daily and at each exit) are realised only,
and its drawdown is the one a trader's account would have shown.
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


# (time ms, symbol, signed base qty bought, price, fee USDT); funding is a move with no qty
Move = tuple[int, str, float, float, float]


def marked_equity(starting_usdt: float, candles: Iterable[Candle], fills: Iterable[Fill],
                  trades: Iterable[Trade]) -> MarkedEquity | None:
    """None without candles. `fills`: the run's; those of a closed trade are taken from the
    trade (its ledger), the others are a position still open."""
    by_close: dict[int, list[Candle]] = {}
    for candle in candles:
        by_close.setdefault(candle.ts_close_ms, []).append(candle)
    if not by_close:
        return None
    moves = _moves(fills, list(trades))
    cash, held, last_close = starting_usdt, {}, {}
    curve: list[tuple[int, float]] = []
    next_move = 0
    for close_ms in sorted(by_close):
        while next_move < len(moves) and moves[next_move][0] <= close_ms:
            _, symbol, bought, price, fee = moves[next_move]
            cash -= bought * price + fee
            held[symbol] = held.get(symbol, 0.0) + bought
            last_close.setdefault(symbol, price)
            next_move += 1
        for candle in by_close[close_ms]:
            last_close[candle.symbol] = candle.close
        worth = sum(qty * last_close[symbol] for symbol, qty in held.items() if qty)
        curve.append((close_ms, cash + worth))
    return _with_drawdown(curve)


def _moves(fills: Iterable[Fill], trades: list[Trade]) -> list[Move]:
    moves: list[Move] = []
    for trade in trades:
        sign = 1.0 if trade.side is Side.BUY else -1.0
        moves.append((trade.entry_ms, trade.symbol, sign * trade.qty_base, trade.entry_price,
                      trade.entry_fee_usdt))
        moves += [(leg.ts_ms, trade.symbol, -sign * leg.qty_base, leg.price, leg.fee_usdt)
                  for leg in trade.legs]
        moves.append((trade.exit_ms, trade.symbol, 0.0, 0.0, trade.funding_usdt))
    closed = tuple(f"{trade.signal_id}-" for trade in trades)
    moves += [(fill.ts_ms, fill.symbol, fill.qty_base if fill.side is Side.BUY else -fill.qty_base,
               fill.price, fill.fee_usdt)
              for fill in fills if not fill.client_id.startswith(closed)]
    return sorted(moves, key=lambda move: move[0])  # stable: one time's moves as they came


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
