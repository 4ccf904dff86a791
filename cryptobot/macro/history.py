"""Macro series precomputed once, then read point in time by a binary search.

Every derived column (13-week change, SMAs, slopes, recent lows, the repo spread's recent
median) uses only its own row and earlier rows, and rows become public in date order, so the
row found for `now_ms` carries nothing from the future.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from cryptobot.macro.calendars import FED, MARKETS
from cryptobot.macro.observations import Observations
from cryptobot.macro.publication import publication_ms, vintage_publication_ms
from cryptobot.macro.snapshot import (
    ChangeReading,
    MacroSnapshot,
    Reading,
    RepoReading,
    TrendReading,
    WalclReading,
)

_R = TypeVar("_R", bound=Reading)

# ALFRED's first vintage of an old observation can be years after it (ALFRED started late):
# beyond this many days past the rule's date, the rule's date is the better guess.
_VINTAGE_MAX_LAG_DAYS = 7


def published_ms(obs: Observations, delay_business_days: int, at: time,
                 calendar: str) -> np.ndarray:
    """When each row became public: ALFRED's vintage date where known (and plausible), else
    the configured delay; never before an earlier row, so a binary search stays valid."""
    rule_ms = publication_ms(obs.dates, delay_business_days, at, calendar)
    if obs.vintage_dates is not None:
        known = ~np.isnat(obs.vintage_dates)
        vintage_ms = rule_ms.copy()
        vintage_ms[known] = vintage_publication_ms(obs.vintage_dates[known], at)
        late = vintage_ms - rule_ms > _VINTAGE_MAX_LAG_DAYS * 86_400_000
        rule_ms = np.where(late, rule_ms, vintage_ms)
    return np.maximum.accumulate(rule_ms)


class SeriesTable:
    """One series with its publication times (ascending) and derived columns."""

    def __init__(self, obs: Observations, published: np.ndarray,
                 columns: dict[str, np.ndarray] | None = None) -> None:
        self.obs = obs
        self.published_ms = np.maximum.accumulate(published.astype(np.int64))
        self.columns = columns or {}
        self._readings: dict[tuple[Any, ...], Reading] = {}  # a row's reading, made once

    @classmethod
    def published_by_rule(cls, obs: Observations, delay_business_days: int, at: time,
                          calendar: str, columns: dict[str, np.ndarray] | None = None,
                          ) -> SeriesTable:
        return cls(obs, published_ms(obs, delay_business_days, at, calendar), columns)

    def index_at(self, now_ms: int) -> int:
        """Index of the latest row published at or before `now_ms`, or -1."""
        return int(self.published_ms.searchsorted(now_ms, side="right")) - 1

    def column(self, name: str, index: int) -> float | None:
        value = float(self.columns[name][index])
        return None if np.isnan(value) else value

    def reading(self, index: int) -> Reading:
        return Reading(self.obs.series_id, str(self.obs.dates[index]),
                       int(self.published_ms[index]), float(self.obs.values[index]),
                       self.obs.source)

    def reading_as(self, kind: type[_R], index: int, columns: dict[str, str]) -> _R:
        """Row `index` as a `kind` reading, `columns` mapping its extra fields to derived
        columns."""
        return self.remembered((kind, index, *columns.items()), lambda: kind(
            **self.reading(index).__dict__,
            **{field: self.column(column, index) for field, column in columns.items()}))

    def remembered(self, key: tuple[Any, ...], make: Callable[[], _R]) -> _R:
        """A reading of a row, made once (readings are frozen; the gate asks at every
        signal, mostly for the rows it read last time)."""
        found = self._readings.get(key)
        if found is None:
            found = self._readings[key] = make()
        return found  # type: ignore[return-value]


def walcl_table(obs: Observations, change_weeks: int, average_weeks: int, delay: int,
                at: time) -> SeriesTable:
    """WALCL with its change and averaged change; published on the Fed's business days."""
    values = pd.Series(obs.values)
    change = values.diff(change_weeks)
    average = change.rolling(average_weeks).mean()
    return SeriesTable.published_by_rule(obs, delay, at, FED, {
        "change": change.to_numpy(), "average": average.to_numpy()})


def trend_table(obs: Observations, fast: int, slow: int, slope_days: int, low_days: int,
                delay: int, at: time) -> SeriesTable:
    """HYG or the high-yield spread with SMAs, slopes and the range of the rows before each
    one; on market business days."""
    values = pd.Series(obs.values)
    sma_fast = values.rolling(fast).mean()
    return SeriesTable.published_by_rule(obs, delay, at, MARKETS, {
        "sma_fast": sma_fast.to_numpy(),
        "sma_slow": values.rolling(slow).mean().to_numpy(),
        "sma_fast_change": sma_fast.diff(slope_days).to_numpy(),
        "value_change": values.diff(slope_days).to_numpy(),
        "prior_low": values.rolling(low_days).min().shift(1).to_numpy(),
        "prior_high": values.rolling(low_days).max().shift(1).to_numpy(),
    })


def change_table(funding: SeriesTable, rows: int) -> SeriesTable:
    """A funding series with its change over `rows` rows (the TGA's weeks, the RRP's days)."""
    change = pd.Series(funding.obs.values).diff(rows).to_numpy()
    return SeriesTable(funding.obs, funding.published_ms, {"change": change})


def repo_table(sofr: SeriesTable, iorb: SeriesTable, range_days: int) -> SeriesTable:
    """SOFR minus IORB in basis points on the dates both have, public once both are, with the
    median of the `range_days` spreads before each row (the middle of its recent range)."""
    dates, in_sofr, in_iorb = np.intersect1d(sofr.obs.dates, iorb.obs.dates,
                                             assume_unique=True, return_indices=True)
    spread_bps = np.round((sofr.obs.values[in_sofr] - iorb.obs.values[in_iorb]) * 100, 6)
    published = np.maximum(sofr.published_ms[in_sofr], iorb.published_ms[in_iorb])
    median = pd.Series(spread_bps).rolling(range_days).median().shift(1).to_numpy()
    obs = Observations("SOFR-IORB", dates, spread_bps,
                       f"{sofr.obs.source} minus {iorb.obs.source}")
    return SeriesTable(obs, published, {"range_median": median, "sofr_index": in_sofr,
                                        "iorb_index": in_iorb})


@dataclass
class MacroHistory:
    walcl: SeriesTable
    hyg: SeriesTable | None
    oas: SeriesTable | None
    funding: list[SeriesTable] = field(default_factory=list)
    notes: tuple[str, ...] = ()
    fetch_method: str = ""
    tga: SeriesTable | None = None  # change_table of WTREGEN, when loaded
    repo: tuple[SeriesTable, SeriesTable, SeriesTable] | None = None  # spread, SOFR, IORB
    rrp: SeriesTable | None = None  # change_table of RRPONTSYD, when loaded

    def snapshot_at(self, now_ms: int) -> MacroSnapshot:
        return MacroSnapshot(
            asof_ms=now_ms,
            walcl=_at(self.walcl, now_ms, WalclReading, change_musd="change",
                      avg_change_musd="average"),
            hyg=_at(self.hyg, now_ms, TrendReading, **_TREND_COLUMNS),
            oas=_at(self.oas, now_ms, TrendReading, **_TREND_COLUMNS),
            tga=_at(self.tga, now_ms, ChangeReading, change="change"),
            repo=_repo_at(self.repo, now_ms),
            rrp=_at(self.rrp, now_ms, ChangeReading, change="change"),
            funding=tuple(r for t in self.funding if (r := _at(t, now_ms, Reading)) is not None),
            notes=self.notes,
            fetch_method=self.fetch_method,
            first_published_ms={t.obs.series_id: int(t.published_ms[0])
                                for t in (self.walcl, self.hyg, self.oas)
                                if t is not None and len(t.published_ms)},
            funding_loaded=frozenset(t.obs.series_id for t in self.funding),
        )


_TREND_COLUMNS = {name: name for name in ("sma_fast", "sma_slow", "sma_fast_change",
                                          "value_change", "prior_low", "prior_high")}


def _at(table: SeriesTable | None, now_ms: int, kind: type[_R],
        **columns: str) -> _R | None:
    """The latest row published by `now_ms` as a `kind` reading; `columns` maps its extra
    fields to the table's derived columns."""
    index = -1 if table is None else table.index_at(now_ms)
    if table is None or index < 0:
        return None
    return table.reading_as(kind, index, columns)


def _repo_at(tables: tuple[SeriesTable, SeriesTable, SeriesTable] | None,
             now_ms: int) -> RepoReading | None:
    """The latest spread public by `now_ms`, with the SOFR and IORB rows it was made of."""
    if tables is None:
        return None
    spread, sofr, iorb = tables
    index = spread.index_at(now_ms)
    if index < 0:
        return None
    return spread.remembered((RepoReading, index), lambda: RepoReading(
        **spread.reading(index).__dict__, range_median_bps=spread.column("range_median", index),
        sofr=sofr.reading(int(spread.columns["sofr_index"][index])),
        iorb=iorb.reading(int(spread.columns["iorb_index"][index]))))
