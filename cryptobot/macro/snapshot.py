"""What the macro gate sees at one moment: the latest published reading of each input."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from cryptobot.clock import iso_utc


@dataclass(frozen=True)
class Reading:
    series_id: str
    observation_date: str  # YYYY-MM-DD, the date the value is for
    published_ms: int  # when it became public (UTC ms)
    value: float
    source: str

    def describe(self) -> dict[str, object]:
        return dict(self._described)

    @cached_property
    def _described(self) -> dict[str, object]:
        return {"value": self.value, "observation_date": self.observation_date,
                "published_utc": iso_utc(self.published_ms), "source": self.source}


@dataclass(frozen=True)
class WalclReading(Reading):
    change_musd: float | None  # change over qt_change_weeks, millions USD
    avg_change_musd: float | None  # its average over qt_average_weeks


@dataclass(frozen=True)
class TrendReading(Reading):
    sma_fast: float | None
    sma_slow: float | None
    sma_fast_change: float | None  # SMA fast now minus slope_days rows ago
    value_change: float | None  # value now minus slope_days rows ago
    prior_low: float | None = None  # lowest value of the credit_low_days rows before this one
    prior_high: float | None = None  # highest value of those rows (a spread's mirror)


@dataclass(frozen=True)
class ChangeReading(Reading):
    change: float | None  # value now minus a set number of rows ago (TGA: weeks, RRP: days)


@dataclass(frozen=True)
class RepoReading(Reading):
    """SOFR minus IORB for one date (`value`, basis points), public once both are."""

    range_median_bps: float | None  # median of the repo_range_days spreads before this one
    sofr: Reading
    iorb: Reading


@dataclass(frozen=True)
class MacroSnapshot:
    asof_ms: int
    walcl: WalclReading | None
    hyg: TrendReading | None
    oas: TrendReading | None
    tga: ChangeReading | None = None  # WTREGEN, change over tga_change_weeks
    repo: RepoReading | None = None
    rrp: ChangeReading | None = None  # RRPONTSYD, change over repo_range_days (context)
    funding: tuple[Reading, ...] = ()  # every funding series as published, for the report
    notes: tuple[str, ...] = ()  # facts about the sources worth a reason (e.g. HYG turned off)
    fetch_method: str = ""  # "bundled snapshot", "FRED API (key)", "FRED keyless CSV"
    first_published_ms: dict[str, int] = field(default_factory=dict)  # series id -> first row
    funding_loaded: frozenset[str] = frozenset()  # funding series the history holds
