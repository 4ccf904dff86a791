"""Macro series precomputed once, then read point in time by a binary search.

Every derived column (13-week change, SMAs, slopes) uses only its own row and earlier rows, and
rows become public in date order, so the row found for `now_ms` carries nothing from the future.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

import numpy as np
import pandas as pd

from cryptobot.macro.observations import Observations
from cryptobot.macro.publication import publication_ms, vintage_publication_ms
from cryptobot.macro.snapshot import MacroSnapshot, Reading, TrendReading, WalclReading

# ALFRED's first vintage of an old observation can be years after it (ALFRED started late):
# beyond this many days past the rule's date, the rule's date is the better guess.
_VINTAGE_MAX_LAG_DAYS = 7


class SeriesTable:
    """One series with its publication times and derived columns."""

    def __init__(self, obs: Observations, delay_business_days: int, at: time,
                 columns: dict[str, np.ndarray] | None = None) -> None:
        self.obs = obs
        rule_ms = publication_ms(obs.dates, delay_business_days, at)
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
    values = pd.Series(obs.values)
    change = values.diff(change_weeks)
    average = change.rolling(average_weeks).mean()
    return SeriesTable(obs, delay, at, {"change": change.to_numpy(),
                                        "average": average.to_numpy()})


def trend_table(obs: Observations, fast: int, slow: int, slope_days: int, delay: int,
                at: time) -> SeriesTable:
    values = pd.Series(obs.values)
    sma_fast = values.rolling(fast).mean()
    return SeriesTable(obs, delay, at, {
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
            walcl=_walcl_at(self.walcl, now_ms),
            hyg=_trend_at(self.hyg, now_ms),
            oas=_trend_at(self.oas, now_ms),
            funding=tuple(r for t in self.funding if (r := _plain_at(t, now_ms)) is not None),
            notes=self.notes,
            fetch_method=self.fetch_method,
        )


def _plain_at(table: SeriesTable, now_ms: int) -> Reading | None:
    index = table.index_at(now_ms)
    return table.reading(index) if index >= 0 else None


def _walcl_at(table: SeriesTable, now_ms: int) -> WalclReading | None:
    index = table.index_at(now_ms)
    if index < 0:
        return None
    base = table.reading(index)
    return WalclReading(**base.__dict__, change_musd=table.column("change", index),
                        avg_change_musd=table.column("average", index))


def _trend_at(table: SeriesTable | None, now_ms: int) -> TrendReading | None:
    if table is None:
        return None
    index = table.index_at(now_ms)
    if index < 0:
        return None
    base = table.reading(index)
    return TrendReading(**base.__dict__,
                        sma_fast=table.column("sma_fast", index),
                        sma_slow=table.column("sma_slow", index),
                        sma_fast_change=table.column("sma_fast_change", index),
                        value_change=table.column("value_change", index))
