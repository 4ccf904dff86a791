"""A macro series as fetched: observation dates, values, and where they came from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Observations:
    """Ascending unique observation dates (datetime64[D]) with their values (no gaps as NaN).

    `vintage_dates` (ALFRED, FRED API with a key) is the day each value was first published;
    None means the configured publication delay applies. `source` says where the values came
    from, for the report.
    """

    series_id: str
    dates: np.ndarray
    values: np.ndarray
    source: str
    vintage_dates: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.dates)

    @property
    def first_date(self) -> str:
        return str(self.dates[0]) if len(self.dates) else "-"

    @property
    def last_date(self) -> str:
        return str(self.dates[-1]) if len(self.dates) else "-"


def merge(parts: list[Observations], series_id: str) -> Observations:
    """One series from several files; on a shared date the later part (newer file) wins."""
    if len(parts) == 1:
        return parts[0]
    by_date: dict[np.datetime64, float] = {}
    for part in parts:
        by_date.update(zip(part.dates, part.values, strict=True))
    dates = np.array(sorted(by_date), dtype="datetime64[D]")
    values = np.array([by_date[day] for day in dates], dtype=np.float64)
    source = " + ".join(part.source for part in parts)
    return Observations(series_id, dates, values, source)
