"""The cross-check rule for the peer tools, written once with pandas and numpy.

What each peer is handed: the base candles and, for every confirmed higher low of the rebound
rule (../../STRATEGY.md, OI confirmation off), the base candle the entry would fill at, its hard
stop and the reference close. Setups are tracked whether or not a position is open (a
confirmation while one is open is rejected), so these candidates do not depend on the trades:
each peer decides with its own position bookkeeping which ones it enters and how they exit
(50% at 1R, stop to break-even from the next base candle, rest at 2R, 24h time stop, 0.5% risk,
3x cap, 0.05% fees). The same 81 entries then say the peer made the same trades.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA_FILE = ROOT / "data" / "btc_5m_2023-11_2024-12" / "BTC_USDT_USDT-5m-futures.feather"
SIGNAL_MS = 15 * 60_000
RISK_USDT = 0.005 * 10_000.0
LEVERAGE_CAP = 3.0
FEE = 0.0005
TIME_STOP_MS = 24 * 3_600_000


@dataclass(frozen=True)
class Candidates:
    entry_row: np.ndarray  # index of the base candle whose open is the entry
    stop: np.ndarray
    reference: np.ndarray  # the confirming candle's close (sizes the position)


def base_candles(path: Path = DATA_FILE) -> pd.DataFrame:
    """The 5m file with `ts_open_ms` (int) beside freqtrade's date, open .. volume."""
    frame = pd.read_feather(path)
    frame["ts_open_ms"] = frame["date"].astype("datetime64[ms, UTC]").astype("int64")
    return frame.reset_index(drop=True)


def signal_candles(base: pd.DataFrame) -> pd.DataFrame:
    """Complete 15m candles (open-time labels) and the first base row after each one."""
    bucket = base["ts_open_ms"] // SIGNAL_MS * SIGNAL_MS
    grouped = base.assign(row=np.arange(len(base))).groupby(bucket, sort=True)
    frame = pd.DataFrame({"open": grouped["open"].first(), "high": grouped["high"].max(),
                          "low": grouped["low"].min(), "close": grouped["close"].last(),
                          "volume": grouped["volume"].sum(), "rows": grouped.size(),
                          "next_row": grouped["row"].max() + 1})
    return frame[frame["rows"] == SIGNAL_MS // 300_000]


def wilder_atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14):
    true_range = np.maximum(high - low, np.maximum(np.abs(high - np.roll(close, 1)),
                                                   np.abs(low - np.roll(close, 1))))
    true_range[0] = high[0] - low[0]
    atr = np.empty_like(true_range)
    atr[0] = true_range[0]
    for i in range(1, len(atr)):
        atr[i] = atr[i - 1] + (true_range[i] - atr[i - 1]) / period
    return atr


def candidates(base: pd.DataFrame) -> Candidates:
    sig = signal_candles(base)
    o, h, lo, c, v = (sig[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    atr = wilder_atr(h, lo, c)
    atr_before = np.concatenate([[np.nan], atr[:-1]])
    high_24h = pd.Series(h).rolling(96).max().to_numpy()
    volume_median = pd.Series(v).rolling(96).median().shift(1).to_numpy()
    with np.errstate(invalid="ignore"):
        spike = ((c < o) & (atr_before > 0) & (o - c >= 1.5 * atr_before)
                 & (c <= 0.96 * high_24h) & (volume_median > 0) & (v >= 3.0 * volume_median))
    next_row = sig["next_row"].to_numpy()
    rows, stops, refs = [], [], []
    setup_low = None
    spike_at = 0
    highs: list[float] = []
    for i in range(len(c)):
        if spike[i]:
            setup_low, spike_at, highs = lo[i], i, []
            continue
        if setup_low is None:
            continue
        confirmed = False
        if lo[i] < setup_low:
            setup_low, highs = lo[i], []
        elif highs and c[i] > min(highs):
            confirmed = True
        if not confirmed and lo[i] > setup_low:
            highs.append(h[i])
        if confirmed:
            if next_row[i] < len(base):
                rows.append(next_row[i])
                stops.append(setup_low - 0.1 * atr[i])
                refs.append(c[i])
            setup_low = None
        elif i - spike_at >= 16:
            setup_low = None
    return Candidates(np.array(rows, dtype=np.int64), np.array(stops), np.array(refs))


def quantity(reference: float, stop: float, entry_price: float, equity: float) -> float:
    """0.5% of the starting equity at risk, capped at 3x the equity in notional."""
    qty = RISK_USDT / (reference - stop)
    return min(qty, LEVERAGE_CAP * equity / entry_price)
