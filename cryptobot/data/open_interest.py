"""Point-in-time open interest: a sample is usable only at or after its own timestamp."""

from __future__ import annotations

import math

import numpy as np

from cryptobot.data.table import Table
from cryptobot.model import OpenInterest


class OpenInterestSeries:
    """Sorted OI samples held as numpy arrays, looked up without look-ahead."""

    def __init__(self, ts_ms: np.ndarray, oi_contracts: np.ndarray,
                 oi_value_usdt: np.ndarray | None = None) -> None:
        self.ts_ms = np.asarray(ts_ms, dtype=np.int64)
        self.oi_contracts = np.asarray(oi_contracts, dtype=np.float64)
        self.oi_value_usdt = (np.full(len(self.ts_ms), np.nan) if oi_value_usdt is None
                              else np.asarray(oi_value_usdt, dtype=np.float64))
        if len(self.ts_ms) > 1 and np.any(np.diff(self.ts_ms) <= 0):
            raise ValueError("open-interest samples must be sorted by time and unique")

    @classmethod
    def from_frame(cls, frame: Table) -> OpenInterestSeries:
        return cls(frame["ts_ms"], frame["oi_contracts"], frame["oi_value_usdt"])

    def __len__(self) -> int:
        return len(self.ts_ms)

    def index_at_or_before(self, ts_ms: int | np.ndarray) -> int | np.ndarray:
        """Index of the last sample with time <= ts_ms, -1 where none (vectorised too)."""
        found = np.searchsorted(self.ts_ms, ts_ms, side="right") - 1
        return int(found) if np.ndim(found) == 0 else found

    def last_at_or_before(self, ts_ms: int) -> OpenInterest | None:
        i = self.index_at_or_before(ts_ms)
        if i < 0:
            return None
        value = float(self.oi_value_usdt[i])
        return OpenInterest(int(self.ts_ms[i]), float(self.oi_contracts[i]),
                            None if math.isnan(value) else value)
