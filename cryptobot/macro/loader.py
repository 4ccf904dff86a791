"""Builds the precomputed MacroHistory from settings: bundled snapshot or FRED, plus HYG."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from cryptobot.clock import Clock
from cryptobot.config import MacroSettings
from cryptobot.errors import MacroDataError
from cryptobot.macro.cache import CachedSource, SeriesSource
from cryptobot.macro.calendars import FED
from cryptobot.macro.csv_files import parse_fred_csv
from cryptobot.macro.fred import FredApiSource, FredCsvSource
from cryptobot.macro.history import (
    MacroHistory,
    SeriesTable,
    change_table,
    repo_table,
    trend_table,
    walcl_table,
)
from cryptobot.macro.hyg import CsvHygSource, YFinanceHygSource
from cryptobot.macro.observations import Observations, merge
from cryptobot.secrets import fred_api_key

WALCL = "WALCL"
OAS = "BAMLH0A0HYM2"
HYG = "HYG"
TGA = "WTREGEN"
SOFR = "SOFR"
IORB = "IORB"
RRP = "RRPONTSYD"
_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def resolve_path(text: str) -> Path:
    """Relative to the current directory; else relative to the repository (tests, CLI)."""
    path = Path(text)
    if path.is_absolute() or path.exists():
        return path
    fallback = _REPO_ROOT / path
    return fallback if fallback.exists() else path


class SnapshotSource:
    """The bundled real FRED snapshot: `SERIES.csv` or `SERIES_*.csv` in one folder."""

    method = "bundled snapshot"

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def fetch(self, series_id: str) -> Observations:
        files = sorted(self._folder.glob(f"{series_id}.csv")) + sorted(
            self._folder.glob(f"{series_id}_*.csv"))
        if not files:
            raise MacroDataError(
                f"unknown series {series_id}: no {series_id}.csv in the snapshot {self._folder}"
            )
        parts = [parse_fred_csv(path.read_text(), series_id, str(path)) for path in files]
        return merge(parts, series_id)


def fred_source(settings: MacroSettings, clock: Clock) -> SeriesSource:
    key = fred_api_key()
    source: SeriesSource
    if key:
        source = FredApiSource(key, settings.fred_api_url, settings.fred_observation_start,
                               settings.http_timeout_s)
    else:
        source = FredCsvSource(settings.fred_csv_url, settings.http_timeout_s,
                               settings.fred_observation_start)
    return CachedSource(source, Path(settings.cache_dir), settings.cache_max_age_hours, clock)


def hyg_source(settings: MacroSettings, clock: Clock) -> SeriesSource | None:
    if settings.hyg_source == "none":
        return None
    if settings.hyg_source == "yfinance":
        return CachedSource(YFinanceHygSource(settings.hyg_ticker, settings.http_timeout_s),
                            Path(settings.cache_dir), settings.cache_max_age_hours, clock)
    return CsvHygSource(resolve_path(settings.hyg_csv))


def load_history(settings: MacroSettings, clock: Clock,
                 source: SeriesSource | None = None) -> MacroHistory:
    """Fetch (or read) every series once and precompute what the gate needs. `clock` ages the
    caches of fetched series (the caller's choice: the wall clock, or `macro --asof`'s)."""
    if source is None:
        source = (fred_source(settings, clock) if settings.use_fred
                  else SnapshotSource(resolve_path(settings.snapshot_dir)))
    walcl = walcl_table(source.fetch(WALCL), settings.qt_change_weeks, settings.qt_average_weeks,
                        settings.walcl_publication_delay_days,
                        time.fromisoformat(settings.walcl_publication_time_ny))
    oas = _trend(source.fetch(OAS), settings, settings.oas_publication_delay_days,
                 settings.oas_publication_time_ny)
    notes: list[str] = []
    hyg = None
    hyg_from = hyg_source(settings, clock)
    if hyg_from is None:
        notes.append("HYG turned off (macro.hyg_source = 'none'): the high-yield spread decides")
    else:
        hyg = _trend(hyg_from.fetch(HYG), settings, 0, settings.hyg_close_time_ny)
    funding_time = time.fromisoformat(settings.funding_publication_time_ny)
    funding = {series_id: SeriesTable.published_by_rule(
        source.fetch(series_id), settings.funding_publication_delay_days, funding_time, FED)
        for series_id in settings.funding_series}
    tga = change_table(funding[TGA], settings.tga_change_weeks) if TGA in funding else None
    rrp = change_table(funding[RRP], settings.repo_range_days) if RRP in funding else None
    repo = None
    if SOFR in funding and IORB in funding:
        repo = (repo_table(funding[SOFR], funding[IORB], settings.repo_range_days),
                funding[SOFR], funding[IORB])
    return MacroHistory(walcl, hyg, oas, list(funding.values()), tuple(notes), source.method,
                        tga, repo, rrp)


def _trend(obs: Observations, settings: MacroSettings, delay: int, at: str) -> SeriesTable:
    return trend_table(obs, settings.hyg_sma_fast, settings.hyg_sma_slow,
                       settings.hyg_slope_days, settings.credit_low_days, delay,
                       time.fromisoformat(at))
