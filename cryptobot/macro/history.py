"""Macro series precomputed once, then read point in time by a binary search.

Every derived column (13-week change, SMAs, slopes) uses only its own row and earlier rows, and
rows become public in date order, so the row found for `now_ms` carries nothing from the future.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from typing import TypeVar

import numpy as np
import pandas as pd

from cryptobot.macro.calendars import FED, MARKETS
from cryptobot.macro.observations import Observations
from cryptobot.macro.publication import publication_ms, vintage_publication_ms
from cryptobot.macro.snapshot import MacroSnapshot, Reading, TrendReading, WalclReading

# ALFRED's first vintage of an old observation can be years after it (ALFRED started late):
# beyond this many days past the rule's date, the rule's date is the better guess.
_VINTAGE_MAX_LAG_DAYS = 7


class SeriesTable:
    """One series with its publication times and derived columns."""

    def __init__(self, obs: Observations, delay_business_days: int, at: time, calendar: str,
                 columns: dict[str, np.ndarray] | None = None) -> None:
        self.obs = obs
        rule_ms = publication_ms(obs.dates, delay_business_days, at, calendar)
        if obs.vintage_dates is not None:
            known = ~np.isnat(obs.vintage_dates)
            vintage_ms = rule_ms.copy()
            vintage_ms[known] = vintage_publication_ms(obs.vintage_dates[known], at)
            late = vintage_ms - rule_ms > _VINTAGE_MAX_LAG_DAYS * 86_400_000
            rule_ms = np.where(late, rule_ms, vintage_ms)
        # A row is visible only once it and every earlier row are public: keeps the search valid.
        self.published_ms = np.maximum.accumulate(rule_ms)
        self.columns = columns or {}

    def index_at(self, now_ms: int) -> int:
        """Index of the latest row published at or before `now_ms`, or -1."""
        return int(np.searchsorted(self.published_ms, now_ms, side="right")) - 1

    def column(self, name: str, index: int) -> float | None:
        value = float(self.columns[name][index])
        return None if np.isnan(value) else value

    def reading(self, index: int) -> Reading:
        return Reading(self.obs.series_id, str(self.obs.dates[index]),
                       int(self.published_ms[index]), float(self.obs.values[index]),
                       self.obs.source)


def walcl_table(obs: Observations, change_weeks: int, average_weeks: int, delay: int,
                at: time) -> SeriesTable:
    """WALCL with its change and averaged change; published on the Fed's business days."""
    values = pd.Series(obs.values)
    change = values.diff(change_weeks)
    average = change.rolling(average_weeks).mean()
    return SeriesTable(obs, delay, at, FED, {"change": change.to_numpy(),
                                        "average": average.to_numpy()})


def trend_table(obs: Observations, fast: int, slow: int, slope_days: int, delay: int,
                at: time) -> SeriesTable:
    """HYG or the high-yield spread with SMAs and slopes; on market business days."""
    values = pd.Series(obs.values)
    sma_fast = values.rolling(fast).mean()
    return SeriesTable(obs, delay, at, MARKETS, {
        "sma_fast": sma_fast.to_numpy(),
        "sma_slow": values.rolling(slow).mean().to_numpy(),
        "sma_fast_change": sma_fast.diff(slope_days).to_numpy(),
        "value_change": values.diff(slope_days).to_numpy(),
    })


@dataclass
class MacroHistory:
    walcl: SeriesTable
    hyg: SeriesTable | None
    oas: SeriesTable | None
    funding: list[SeriesTable] = field(default_factory=list)
    notes: tuple[str, ...] = ()
    fetch_method: str = ""

    def snapshot_at(self, now_ms: int) -> MacroSnapshot:
        return MacroSnapshot(
            asof_ms=now_ms,
            walcl=_at(self.walcl, now_ms, WalclReading, change_musd="change",
                      avg_change_musd="average"),
            hyg=_at(self.hyg, now_ms, TrendReading, **_TREND_COLUMNS),
            oas=_at(self.oas, now_ms, TrendReading, **_TREND_COLUMNS),
            funding=tuple(r for t in self.funding if (r := _at(t, now_ms, Reading)) is not None),
            notes=self.notes,
            fetch_method=self.fetch_method,
            first_published_ms={t.obs.series_id: int(t.published_ms[0])
                                for t in (self.walcl, self.hyg, self.oas)
                                if t is not None and len(t.published_ms)},
        )


_R = TypeVar("_R", bound=Reading)
_TREND_COLUMNS = {name: name for name in ("sma_fast", "sma_slow", "sma_fast_change",
                                          "value_change")}


def _at(table: SeriesTable | None, now_ms: int, kind: type[_R],
        **columns: str) -> _R | None:
    """The latest row published by `now_ms` as a `kind` reading; `columns` maps its extra
    fields to the table's derived columns."""
    index = -1 if table is None else table.index_at(now_ms)
    if table is None or index < 0:
        return None
    extra = {field: table.column(column, index) for field, column in columns.items()}
    return kind(**table.reading(index).__dict__, **extra)
