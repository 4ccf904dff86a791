"""The cross-check rule in backtesting.py (kernc/backtesting.py), one whole process.

    .venv/bin/python benchmarks/peers/with_backtesting.py

Prints one JSON line: the entry times (UTC) and the number of trades. backtesting.py trades
whole units, so quantities are in satoshis (its FractionalBacktest); the two halves of a
position are two trades sharing the stop, one with TP at 1R, one at 2R. A market order placed
at a base candle's close fills at the next one's open: the same price cryptobot fills at.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from backtesting import Strategy
from backtesting.lib import FractionalBacktest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rule import FEE, TIME_STOP_MS, base_candles, candidates, quantity  # noqa: E402

UNIT = 1e-8  # one satoshi: backtesting.py's smallest tradable unit here


def rebound_strategy(base: pd.DataFrame):
    picks = candidates(base)
    entry_at = dict(zip(picks.entry_row.tolist(), zip(picks.stop.tolist(),
                                                       picks.reference.tolist(), strict=True),
                        strict=True))
    opens = base["open"].to_numpy()
    ts_open_ms = base["ts_open_ms"].to_numpy()

    class Rebound(Strategy):
        def init(self) -> None:
            self.entry_ms = self.entry_price = self.risk = None

        def next(self) -> None:
            row = len(self.data) - 1  # this base candle; orders fill at the next one's open
            if self.trades and self.entry_ms is not None:
                half = self.trades[0]
                if len(self.trades) == 1 and half.tp > (self.entry_price + self.risk) * UNIT \
                        and half.sl < self.entry_price * UNIT:
                    half.sl = self.entry_price * UNIT  # TP1 filled: break-even from the next
                if row + 1 < len(ts_open_ms) and ts_open_ms[row + 1] >= self.entry_ms \
                        + TIME_STOP_MS:
                    self.position.close()
                return
            pick = entry_at.get(row + 1)
            if pick is None:
                return
            stop, reference = pick
            entry = opens[row + 1]  # no slippage: the fill price is that open
            qty = quantity(reference, stop, entry, self.equity)
            units = int(qty / 2 / UNIT)
            risk = entry - stop
            self.entry_ms, self.entry_price, self.risk = int(ts_open_ms[row + 1]), entry, risk
            self.buy(size=units, sl=stop * UNIT, tp=(entry + risk) * UNIT)
            self.buy(size=units, sl=stop * UNIT, tp=(entry + 2 * risk) * UNIT)

    return Rebound


def main() -> None:
    base = base_candles()
    data = pd.DataFrame({"Open": base["open"].to_numpy(), "High": base["high"].to_numpy(),
                         "Low": base["low"].to_numpy(), "Close": base["close"].to_numpy(),
                         "Volume": base["volume"].to_numpy()},
                        index=pd.to_datetime(base["ts_open_ms"].to_numpy(), unit="ms"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test = FractionalBacktest(data, rebound_strategy(base), cash=10_000,
                                  commission=FEE, fractional_unit=UNIT, finalize_trades=True)
        stats = test.run()
    trades = stats["_trades"]
    entries = sorted(set(np.asarray(trades["EntryTime"]).astype("datetime64[s]").tolist()))
    print(json.dumps({"tool": "backtesting.py", "trades": len(entries),
                      "entries": [f"{t.isoformat()}Z" for t in entries],
                      "return_pct": float(stats["Return [%]"])}))


if __name__ == "__main__":
    main()
