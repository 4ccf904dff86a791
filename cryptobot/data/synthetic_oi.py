"""Build the SYNTHETIC 5m open-interest path for the bundled 2024-08-05 window.

No real intraday OI exists offline for a cascade. This path is anchored to the REAL daily
Binance BTC/USDT open interest (Coinalyze, USD), converted to contracts (BTC) at each day's last
5m close, and follows the real 5m candles in between: on a day whose contracts fell, the fall is
spread over the day's bearish candles by volume x fall (long liquidations close positions as
price drops); on a day whose contracts rose, the rise is spread by volume x |return|. The method
is written out in SYNTHETIC_OI_METHOD.md beside the file. Run
`python -m cryptobot.data.synthetic_oi` to regenerate it (deterministic).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from cryptobot.clock import DAY_MS, iso_utc
from cryptobot.data.readers import read_market_file
from cryptobot.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
CANDLES_FILE = (REPO_ROOT / "data" / "btc_2024-08_crash"
                / "binance_um_BTCUSDT_5m_2024-08-05_window.csv")
DAILY_OI_FILE = REPO_ROOT / "tests" / "fixtures" / "dumps" / "coinalyze_open_interest_daily.csv"
DAILY_OI_COLUMN = "BTC/USDT - Binance"
OUTPUT_FILE = (REPO_ROOT / "data" / "btc_2024-08_crash"
               / "binance_um_BTCUSDT_oi_5m_2024-08-05_window_SYNTHETIC.csv")
HEADER = "timestamp,sumOpenInterest,sumOpenInterestValue"


def daily_anchors(path: Path = DAILY_OI_FILE, column: str = DAILY_OI_COLUMN) -> dict[int, float]:
    """Real daily OI (USD) keyed by the UTC ms at which the day ENDS (its value is the close)."""
    frame = pd.read_csv(path, usecols=["t", column]).dropna()
    anchors: dict[int, float] = {}
    for day_text, value in zip(frame["t"], frame[column], strict=True):
        day_start_ms = int(pd.Timestamp(day_text, tz="UTC").timestamp()) * 1000
        anchors[day_start_ms + DAY_MS] = float(value)
    return anchors


def _step_weights(day: pd.DataFrame, falling: bool) -> list[float]:
    """How a day's change is shared among its candles (uniform when nothing moved)."""
    mean_volume = sum(day["volume"]) / len(day)
    weights = []
    for open_, close, volume in zip(day["open"], day["close"], day["volume"], strict=True):
        move = close / open_ - 1.0
        weights.append(volume / mean_volume * (max(0.0, -move) if falling else abs(move)))
    total = sum(weights)
    if total <= 0:
        return [1.0 / len(day)] * len(day)
    return [weight / total for weight in weights]


def build_synthetic_oi(candles: pd.DataFrame, anchors: dict[int, float],
                       interval_ms: int) -> list[tuple[int, float, float]]:
    """(ts_ms, oi_contracts, oi_value_usdt) at the window's start and at every candle's close."""
    first_ms = int(candles["ts_open_ms"].iloc[0])
    if first_ms % DAY_MS or first_ms not in anchors:
        raise DataError(f"synthetic OI: window must start at a UTC midnight with a daily anchor "
                        f"({iso_utc(first_ms)})")
    first_open = float(candles["open"].iloc[0])
    contracts = anchors[first_ms] / first_open
    rows = [(first_ms, contracts, anchors[first_ms])]
    for day_start_ms, day in candles.groupby(candles["ts_open_ms"] // DAY_MS * DAY_MS, sort=True):
        end_ms = int(day_start_ms) + DAY_MS
        if end_ms not in anchors:
            raise DataError(f"synthetic OI: no daily OI for the day ending {iso_utc(end_ms)}")
        day_close = float(day["close"].iloc[-1])
        target_contracts = anchors[end_ms] / day_close
        log_change = math.log(target_contracts / contracts)
        shares = _step_weights(day, falling=log_change < 0)
        for ts_open_ms, close, share in zip(day["ts_open_ms"], day["close"], shares, strict=True):
            contracts *= math.exp(log_change * share)
            rows.append((int(ts_open_ms) + interval_ms, contracts, contracts * float(close)))
        contracts = target_contracts  # land exactly on the real daily value, no drift
        rows[-1] = (rows[-1][0], contracts, anchors[end_ms])
    return rows


def render_csv(rows: list[tuple[int, float, float]]) -> str:
    # Rounded to Binance's BTCUSDT quantity step and to cents, so the bytes are reproducible.
    lines = [HEADER] + [f"{ts},{contracts:.3f},{value:.2f}" for ts, contracts, value in rows]
    return "\n".join(lines) + "\n"


def generate(candles_file: Path = CANDLES_FILE, daily_file: Path = DAILY_OI_FILE) -> str:
    parsed = read_market_file(candles_file)
    assert parsed.interval_ms is not None
    return render_csv(build_synthetic_oi(parsed.frame.to_pandas(), daily_anchors(daily_file),
                                         parsed.interval_ms))


def main(argv: list[str] | None = None) -> None:
    target = Path((argv or sys.argv[1:] or [str(OUTPUT_FILE)])[0])
    target.write_text(generate())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
