"""SYNTHETIC, PLANTED LOOK-AHEAD: a strategy that peeks at the future, for the look-ahead tests.

Never trade it. `Peeking` is the shipped liquidation-rebound rule plus one condition that reads
a later candle: its custom indicator `CloseAhead` shifts the close column back with
`np.roll(close, -rows)`, so each row sees the close `rows` candles later (and, at the end of
the data, wraps around to the first candles). On the whole data a fast backtest therefore
trades only the spikes after which the price had already recovered; `cryptobot lookahead`
must catch it (tests/engine/test_lookahead.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryptobot.strategy import CandleView, Columns, Indicator
from strategies.liquidation_rebound import LiquidationRebound


@dataclass(frozen=True)
class CloseAhead(Indicator):
    """PLANTED BUG: the close `rows` candles LATER (np.roll reads the future)."""

    rows: int = 1

    def values(self, candles: Columns) -> np.ndarray:
        return np.roll(candles.column("close"), -self.rows)


class Peeking(LiquidationRebound):
    """SYNTHETIC: the liquidation rebound, keeping only the spikes whose candle opened below
    the close `AHEAD` candles later (96: a day of 15m candles), which is known only then.

    A peek at the next candle alone (AHEAD = 1) changes only the last row of data cut short,
    so it changes decisions only when a cut falls right after a spike; the indicator and
    trigger check catches it anyway (tests/engine/test_lookahead.py)."""

    AHEAD = 96

    def indicators(self):
        return {**super().indicators(), "close_later": CloseAhead(self.AHEAD)}

    def trigger(self, c: CandleView):
        yield from super().trigger(c)
        yield c.close_later > c.open


class StashPeeking(LiquidationRebound):
    """SYNTHETIC, PLANTED: keeps the view its trigger is given in a class attribute and reads
    later closes from it in `on_candle`. A fast backtest hands the trigger every candle at
    once, so this peeks there and not live: only feeding the same data candle by candle
    shows it, and `cryptobot lookahead` does that too."""

    seen: CandleView | None = None

    def trigger(self, c: CandleView):
        type(self).seen = c
        return super().trigger(c)

    def on_candle(self, ctx):
        decisions = super().on_candle(ctx)
        view = type(self).seen
        later = view.close[view.rows > ctx.index] if view is not None else []
        if len(later) and later[0] < ctx.candle.close:  # the next trigger's close is lower
            return [d for d in decisions if not hasattr(d, "stop_price")]
        return decisions
