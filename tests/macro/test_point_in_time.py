"""A decision at time t sees only what was published by t (DST-aware New York times)."""

from __future__ import annotations

import numpy as np
import pytest

from cryptobot.clock import LiveClock, parse_utc
from cryptobot.config import MacroSettings
from cryptobot.macro.calendars import FED, MARKETS, business_days
from cryptobot.macro.history import SeriesTable
from cryptobot.macro.loader import SnapshotSource, load_history
from cryptobot.macro.observations import Observations
from cryptobot.macro.publication import trading_days_between
from cryptobot.macro.rules import evaluate
from tests.macro.conftest import MACRO_DIR


@pytest.mark.parametrize(
    ("wednesday", "thursday_release_utc", "previous"),
    [
        # Summer (EDT, UTC-4): Thursday 16:30 New York is 20:30 UTC.
        ("2024-07-31", "2024-08-01T20:30:00Z", "2024-07-24"),
        # Winter (EST, UTC-5): 21:30 UTC.
        ("2024-01-10", "2024-01-11T21:30:00Z", "2024-01-03"),
        # Both sides of the November 2024 switch back to EST (Sunday 2024-11-03).
        ("2024-10-30", "2024-10-31T20:30:00Z", "2024-10-23"),
        ("2024-11-06", "2024-11-07T21:30:00Z", "2024-10-30"),
        # The first week of EDT in 2024 (switch on Sunday 2024-03-10).
        ("2024-03-13", "2024-03-14T20:30:00Z", "2024-03-06"),
    ],
)
def test_walcl_invisible_before_its_publication_time(bundled_history, wednesday,
                                                      thursday_release_utc, previous):
    release_ms = parse_utc(thursday_release_utc)
    before = bundled_history.snapshot_at(release_ms - 1)
    at = bundled_history.snapshot_at(release_ms)
    assert before.walcl.observation_date == previous
    assert at.walcl.observation_date == wednesday
    assert at.walcl.published_ms == release_ms
    # The decisions themselves differ in the WALCL input they cite.
    settings = MacroSettings()
    assert evaluate(before, settings).inputs["walcl"]["observation_date"] == previous
    assert evaluate(at, settings).inputs["walcl"]["observation_date"] == wednesday


def test_hyg_close_usable_from_1615_new_york(bundled_history):
    # Friday 2024-08-02 (EDT): 16:15 New York = 20:15 UTC.
    release_ms = parse_utc("2024-08-02T20:15:00Z")
    assert bundled_history.snapshot_at(release_ms - 1).hyg.observation_date == "2024-08-01"
    assert bundled_history.snapshot_at(release_ms).hyg.observation_date == "2024-08-02"


def test_spread_of_a_friday_is_published_on_monday(bundled_history):
    # BAMLH0A0HYM2 for Friday 2024-08-02: next business day, Monday 16:30 EDT = 20:30 UTC.
    monday_release_ms = parse_utc("2024-08-05T20:30:00Z")
    assert bundled_history.snapshot_at(monday_release_ms - 1).oas.observation_date == "2024-08-01"
    assert bundled_history.snapshot_at(monday_release_ms).oas.observation_date == "2024-08-02"


class _CutSource(SnapshotSource):
    """The bundled snapshot with every row after `last_day` removed."""

    def __init__(self, last_day: str) -> None:
        super().__init__(MACRO_DIR)
        self._last = np.datetime64(last_day)

    def fetch(self, series_id: str) -> Observations:
        full = super().fetch(series_id)
        keep = full.dates <= self._last
        return Observations(series_id, full.dates[keep], full.values[keep], full.source)


@pytest.mark.parametrize("asof", ["2022-06-17T12:00:00Z", "2023-03-24T00:00:00Z",
                                  "2024-08-05T06:00:00Z", "2025-12-19T22:00:00Z"])
def test_cutting_the_future_off_changes_no_decision(bundled_history, asof, monkeypatch):
    """Data cut at the decision's own date gives the same decision: nothing leaks back."""
    settings = MacroSettings()
    now_ms = parse_utc(asof)
    full = evaluate(bundled_history.snapshot_at(now_ms), settings)
    cut_day = np.datetime64(asof[:10])
    monkeypatch.setattr("cryptobot.macro.loader.CsvHygSource.fetch",
                        lambda self, sid: _cut_hyg(sid, cut_day))
    cut_history = load_history(settings, LiveClock(), source=_CutSource(asof[:10]))
    cut = evaluate(cut_history.snapshot_at(now_ms), settings)
    assert cut.action == full.action
    assert cut.reasons == full.reasons
    assert _without_sources(cut.inputs) == _without_sources(full.inputs)


def _without_sources(value):
    if isinstance(value, dict):
        return {k: _without_sources(v) for k, v in value.items() if k != "source"}
    return value


def _cut_hyg(series_id: str, last: np.datetime64) -> Observations:
    from cryptobot.macro.csv_files import read_price_csv

    full = read_price_csv(MACRO_DIR / "HYG_daily_adjusted.csv", series_id)
    keep = full.dates <= last
    return Observations(series_id, full.dates[keep], full.values[keep], full.source)


# ---- US holidays ---------------------------------------------------------------------------

def test_walcl_before_thanksgiving_is_published_on_friday(bundled_history):
    # Wednesday 2024-11-27; Thursday is Thanksgiving, so the H.4.1 comes out Friday 16:30 EST.
    friday_release_ms = parse_utc("2024-11-29T21:30:00Z")
    assert bundled_history.snapshot_at(parse_utc("2024-11-28T21:30:00Z")).walcl \
        .observation_date == "2024-11-20"
    assert bundled_history.snapshot_at(friday_release_ms - 1).walcl.observation_date \
        == "2024-11-20"
    assert bundled_history.snapshot_at(friday_release_ms).walcl.observation_date == "2024-11-27"


def test_walcl_of_christmas_wednesday_is_published_on_thursday(bundled_history):
    # The observation date itself is a holiday: the next business day is still Thursday.
    release_ms = parse_utc("2024-12-26T21:30:00Z")
    assert bundled_history.snapshot_at(release_ms - 1).walcl.observation_date == "2024-12-18"
    assert bundled_history.snapshot_at(release_ms).walcl.observation_date == "2024-12-25"


def test_spread_before_good_friday_is_published_after_it(bundled_history):
    # Thursday 2024-03-28's spread: Good Friday is no market day, so it is public on Monday,
    # together with the month-end value ICE stamps on Sunday 2024-03-31.
    oas = bundled_history.oas
    published = dict(zip(oas.obs.dates.astype(str), oas.published_ms, strict=True))
    monday_release_ms = parse_utc("2024-04-01T20:30:00Z")
    assert published["2024-03-28"] == published["2024-03-31"] == monday_release_ms
    assert bundled_history.snapshot_at(monday_release_ms - 1).oas.observation_date \
        == "2024-03-27"


@pytest.mark.parametrize(("observed", "asof", "calendar", "age"), [
    ("2024-08-30", "2024-09-03T12:00:00Z", MARKETS, 1),  # Labor Day Monday is no trading day
    ("2024-12-20", "2024-12-27T12:00:00Z", MARKETS, 4),  # Christmas week
    ("2024-03-28", "2024-04-01T12:00:00Z", MARKETS, 1),  # Good Friday: markets closed
    ("2024-03-28", "2024-04-01T12:00:00Z", FED, 2),  # ... but not a federal holiday
    ("2024-10-11", "2024-10-15T12:00:00Z", MARKETS, 2),  # Columbus Day: NYSE open
    ("2024-10-11", "2024-10-15T12:00:00Z", FED, 1),  # ... the Fed closed
])
def test_trading_day_ages_skip_holidays(observed, asof, calendar, age):
    assert trading_days_between(observed, parse_utc(asof), calendar) == age


def test_the_market_calendar_matches_every_hyg_close():
    """The bundled real HYG closes (2007-2026) fall on market business days only, and miss
    no business day except three one-off closures (Sandy 2012, two national days of mourning)."""
    from cryptobot.macro.csv_files import read_price_csv

    days = read_price_csv(MACRO_DIR / "HYG_daily_adjusted.csv", "HYG").dates
    calendar = business_days(MARKETS)
    assert np.is_busday(days, busdaycal=calendar).all()
    every = np.arange(days[0], days[-1] + 1)
    missing = np.setdiff1d(every[np.is_busday(every, busdaycal=calendar)], days)
    assert [str(day) for day in missing] == ["2012-10-29", "2012-10-30", "2018-12-05",
                                             "2025-01-09"]


def test_a_holiday_keeps_credit_fresh_over_a_long_weekend():
    """HYG of Thursday 2024-12-19 seen on Friday 2024-12-27: 5 market days old with Christmas
    skipped (fresh under the default limit of 5), 6 if the holiday counted."""
    settings = MacroSettings()
    from cryptobot.macro.snapshot import MacroSnapshot, TrendReading, WalclReading

    day = "2024-12-19"
    hyg = TrendReading("HYG", day, parse_utc(day), 80.0, "hand-made", 80.0, 79.0, 0.1, 0.1)
    walcl = WalclReading("WALCL", "2024-12-18", parse_utc("2024-12-19"), 6.9e6, "hand-made",
                         -60_000.0, -60_000.0)
    decision = evaluate(MacroSnapshot(parse_utc("2024-12-27T12:00:00Z"), walcl, hyg, None),
                        settings)
    assert decision.inputs["hyg"]["age_trading_days"] == 5
    assert decision.inputs["credit_source"] == "HYG"
    assert not decision.reasons[0].startswith("stale")


def test_readings_made_once_per_row_are_the_rows_read_afresh(bundled_history):
    """The gate keeps each row's reading once made: asked in any order, again and again, it
    decides as if it made every reading afresh (the row published by each moment, nothing of
    another row or reading kind)."""
    rng = np.random.default_rng(7)
    moments = rng.integers(parse_utc("2022-01-01"), parse_utc("2025-06-01"), 300).tolist()
    moments += moments[::-1] + [parse_utc("2024-08-01T20:30:00Z") + d for d in (-1, 0, 1)]
    settings = MacroSettings()
    with pytest.MonkeyPatch.context() as patch:  # every reading made afresh
        patch.setattr(SeriesTable, "remembered", lambda self, key, make: make())
        afresh = [bundled_history.snapshot_at(now_ms) for now_ms in moments]
    for now_ms, expected in zip(moments, afresh, strict=True):
        remembered = bundled_history.snapshot_at(now_ms)
        assert remembered == expected, now_ms
        assert evaluate(remembered, settings) == evaluate(expected, settings)


def test_dates_worked_out_once_are_those_worked_out_afresh():
    """New York dates (kept per UTC hour) and business-day ages (kept per date pair) equal
    the ones worked out at each moment, over the DST switches and their hours' edges."""
    from datetime import UTC, datetime

    from cryptobot.clock import HOUR_MS
    from cryptobot.macro.publication import NEW_YORK, ny_date

    rng = np.random.default_rng(11)
    moments = rng.integers(parse_utc("2023-01-01"), parse_utc("2025-12-31"), 400).tolist()
    for switch in ("2024-03-10T07:00:00Z", "2024-11-03T06:00:00Z", "2025-03-09T07:00:00Z",
                   "2024-08-05T04:00:00Z", "2024-12-06T05:00:00Z"):  # and New York midnights
        at = parse_utc(switch)
        moments += [at + d for d in (-HOUR_MS, -1, 0, 1, HOUR_MS - 1, HOUR_MS)]
    for ts_ms in moments:
        local = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(NEW_YORK)
        assert ny_date(ts_ms) == np.datetime64(local.date(), "D"), ts_ms
        observed = str(np.datetime64(local.date(), "D") - int(rng.integers(0, 40)))
        for calendar in (FED, MARKETS):
            assert trading_days_between(observed, ts_ms, calendar) == int(np.busday_count(
                np.datetime64(observed), np.datetime64(local.date(), "D"),
                busdaycal=business_days(calendar))), (observed, ts_ms, calendar)
