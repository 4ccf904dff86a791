"""HYG daily closes: a CSV file (shipped) or yfinance (optional extra, unadjusted closes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryptobot.errors import MacroDataError
from cryptobot.macro.csv_files import read_price_csv
from cryptobot.macro.observations import Observations


class CsvHygSource:
    method = "CSV file"

    def __init__(self, path: Path) -> None:
        self._path = path

    def fetch(self, series_id: str) -> Observations:
        return read_price_csv(self._path, series_id)


class YFinanceHygSource:
    """Only used when yfinance is installed and `macro.hyg_source = "yfinance"`."""

    method = "yfinance"

    def __init__(self, ticker: str, timeout_s: float) -> None:
        try:
            import yfinance  # noqa: F401
        except ImportError:
            raise MacroDataError(
                "macro.hyg_source = 'yfinance' but yfinance is not installed: "
                "pip install 'cryptobot[yfinance]'"
            ) from None
        self._ticker = ticker
        self._timeout_s = timeout_s

    def fetch(self, series_id: str) -> Observations:
        import yfinance

        try:
            frame = yfinance.Ticker(self._ticker).history(
                period="max", auto_adjust=False, timeout=self._timeout_s
            )
        except Exception as exc:  # yfinance raises many types; all mean "no data"
            raise MacroDataError(f"yfinance {self._ticker}: {type(exc).__name__}: {exc}") from None
        if frame is None or frame.empty or "Close" not in frame:
            raise MacroDataError(f"yfinance {self._ticker}: no daily closes returned")
        closes = frame["Close"].dropna()
        dates = np.array([stamp.date() for stamp in closes.index], dtype="datetime64[D]")
        return Observations(series_id, dates, closes.to_numpy(dtype=np.float64),
                            f"yfinance {self._ticker} (unadjusted closes)")
