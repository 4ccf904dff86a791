"""FRED (API with a key, keyless CSV), the cache, HYG files and the bundled snapshot.

The FRED tests talk to the fake FRED of conftest.py on 127.0.0.1 serving the real bundled data.
"""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest

from cryptobot.clock import HOUR_MS, LiveClock, SimClock, parse_utc
from cryptobot.config import MacroSettings
from cryptobot.errors import MacroDataError
from cryptobot.macro.fred import FredApiSource, FredCsvSource
from cryptobot.macro.loader import SnapshotSource, load_history
from tests.macro.conftest import GOOD_KEY, MACRO_DIR

CLOCK_MS = parse_utc("2024-08-05T00:00:00Z")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fred_api_serves_the_recorded_values_with_vintage_dates(fake_fred):
    source = FredApiSource(GOOD_KEY, f"{fake_fred.root}/fred", "2015-01-01")
    fetched = source.fetch("WALCL")
    bundled = SnapshotSource(MACRO_DIR).fetch("WALCL")
    since = bundled.dates >= np.datetime64("2015-01-01")
    assert fetched.first_date == "2015-01-07"
    assert np.array_equal(fetched.dates, bundled.dates[since])
    assert np.array_equal(fetched.values, bundled.values[since])
    # Each Wednesday's first vintage is the Thursday after it.
    assert fetched.vintage_dates[-1] == np.datetime64("2026-08-06")
    assert fake_fred.requests["/fred/series/vintagedates"] == 1


def test_with_a_key_the_gate_uses_vintage_dates_and_says_fred_api(fred_settings, monkeypatch):
    monkeypatch.setenv("FRED_API_KEY", GOOD_KEY)
    history = load_history(fred_settings, SimClock(CLOCK_MS))
    assert history.fetch_method == "FRED API (key)"
    release_ms = parse_utc("2024-08-01T20:30:00Z")  # Thursday vintage, 16:30 EDT
    assert history.snapshot_at(release_ms - 1).walcl.observation_date == "2024-07-24"
    assert history.snapshot_at(release_ms).walcl.observation_date == "2024-07-31"


def test_fred_error_answer_for_an_unknown_series(fake_fred):
    source = FredApiSource(GOOD_KEY, f"{fake_fred.root}/fred", "2015-01-01")
    with pytest.raises(MacroDataError,
                       match="series NOSUCHSERIES: Bad Request.  The series does not exist"):
        source.fetch("NOSUCHSERIES")


def test_fred_rejects_a_wrong_key_without_echoing_it(fake_fred):
    wrong_key = "0000111122223333444455556666wxyz"
    with pytest.raises(MacroDataError, match="api_key is not registered") as caught:
        FredApiSource(wrong_key, f"{fake_fred.root}/fred", "2015-01-01").fetch("WALCL")
    assert wrong_key not in str(caught.value)


def test_fred_api_unreachable():
    source = FredApiSource(GOOD_KEY, f"http://127.0.0.1:{_closed_port()}/fred", "2015-01-01")
    with pytest.raises(MacroDataError, match="unreachable while fetching WALCL"):
        source.fetch("WALCL")


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        yield sock.getsockname()[1]


def test_fred_api_gives_up_on_a_silent_server(silent_port):
    source = FredApiSource(GOOD_KEY, f"http://127.0.0.1:{silent_port}/fred", "2015-01-01",
                           timeout_s=0.3)
    with pytest.raises(MacroDataError, match="unreachable while fetching WALCL: .*timed out"):
        source.fetch("WALCL")


def test_keyless_csv_gives_up_on_a_silent_server(silent_port):
    source = FredCsvSource(f"http://127.0.0.1:{silent_port}/graph/fredgraph.csv", 0.3,
                           "2015-01-01")
    with pytest.raises(MacroDataError, match="unreachable while fetching SOFR: .*timed out"):
        source.fetch("SOFR")


def test_missing_key_falls_back_to_keyless_csv_and_says_so(fred_settings, fake_fred, monkeypatch):
    monkeypatch.delenv("FRED_API_KEY", raising=False)
    history = load_history(fred_settings, SimClock(CLOCK_MS))
    assert history.fetch_method == "FRED keyless CSV"
    assert fake_fred.requests["/graph/fredgraph.csv"] == 2 + len(fred_settings.funding_series)
    assert "/fred/series/observations" not in fake_fred.requests
    # Keyless: no vintages, so the configured Thursday 16:30 New York rule applies.
    assert history.snapshot_at(parse_utc("2024-08-01T20:29:59Z")).walcl.observation_date \
        == "2024-07-24"
    assert history.snapshot_at(parse_utc("2024-08-01T20:30:00Z")).walcl.observation_date \
        == "2024-07-31"


def test_keyless_csv_unknown_series(fake_fred):
    source = FredCsvSource(f"{fake_fred.root}/graph/fredgraph.csv", 5.0, "2015-01-01")
    with pytest.raises(MacroDataError, match="series NOSUCHSERIES: HTTP 404"):
        source.fetch("NOSUCHSERIES")


def test_keyless_csv_malformed_answer(fake_fred):
    fake_fred.malformed_csv.add("WALCL")
    source = FredCsvSource(f"{fake_fred.root}/graph/fredgraph.csv", 5.0, "2015-01-01")
    with pytest.raises(MacroDataError, match="is not a FRED CSV"):
        source.fetch("WALCL")


def test_keyless_csv_unreachable():
    url = f"http://127.0.0.1:{_closed_port()}/graph/fredgraph.csv"
    source = FredCsvSource(url, 5.0, "2015-01-01")
    with pytest.raises(MacroDataError, match="unreachable while fetching SOFR"):
        source.fetch("SOFR")


def test_cache_avoids_refetching_until_it_is_old(fred_settings, fake_fred, monkeypatch):
    monkeypatch.delenv("FRED_API_KEY", raising=False)
    clock = SimClock(CLOCK_MS)
    first = load_history(fred_settings, clock)
    fetched = fake_fred.requests["/graph/fredgraph.csv"]
    second = load_history(fred_settings, clock)
    assert fake_fred.requests["/graph/fredgraph.csv"] == fetched
    assert "cached" in second.walcl.obs.source
    assert np.array_equal(first.walcl.published_ms, second.walcl.published_ms)
    assert np.array_equal(first.oas.obs.values, second.oas.obs.values)
    clock.advance_to(CLOCK_MS + int(fred_settings.cache_max_age_hours * HOUR_MS) + 1)
    load_history(fred_settings, clock)
    assert fake_fred.requests["/graph/fredgraph.csv"] == 2 * fetched


def test_cache_keeps_vintage_dates(fred_settings, fake_fred, monkeypatch):
    monkeypatch.setenv("FRED_API_KEY", GOOD_KEY)
    clock = SimClock(CLOCK_MS)
    first = load_history(fred_settings, clock)
    second = load_history(fred_settings, clock)
    assert fake_fred.requests["/fred/series/observations"] == 2 + len(fred_settings.funding_series)
    assert np.array_equal(first.walcl.published_ms, second.walcl.published_ms)


def test_snapshot_unknown_series_is_an_error():
    with pytest.raises(MacroDataError, match="unknown series NOSUCHSERIES"):
        load_history(MacroSettings(funding_series=("NOSUCHSERIES",)), LiveClock())


def test_snapshot_merges_the_two_spread_files():
    oas = SnapshotSource(MACRO_DIR).fetch("BAMLH0A0HYM2")
    assert oas.first_date == "1996-12-31" and oas.last_date == "2026-08-06"
    assert len(np.unique(oas.dates)) == len(oas.dates)


def test_malformed_fred_csv_names_the_line(tmp_path):
    (tmp_path / "WALCL.csv").write_text("observation_date,WALCL\n2024-07-24,7200000\n"
                                        "2024-07-31,seven million\n")
    with pytest.raises(MacroDataError, match=r"WALCL.csv: line 3: value 'seven million'"):
        SnapshotSource(tmp_path).fetch("WALCL")


def test_hyg_csv_without_a_close_column(tmp_path):
    path = tmp_path / "hyg.csv"
    path.write_text("Date,Open\n2024-08-01,70.0\n")
    with pytest.raises(MacroDataError, match="needs a 'date' and a 'close' column"):
        load_history(MacroSettings(hyg_csv=str(path)), LiveClock())


def test_hyg_csv_missing_file(tmp_path):
    with pytest.raises(MacroDataError, match="HYG price file not found"):
        load_history(MacroSettings(hyg_csv=str(tmp_path / "nope.csv")), LiveClock())


def test_hyg_turned_off_leaves_the_spread_deciding():
    history = load_history(MacroSettings(hyg_source="none"), LiveClock())
    assert history.hyg is None
    from cryptobot.macro.rules import evaluate

    decision = evaluate(history.snapshot_at(parse_utc("2024-08-05")), MacroSettings())
    assert decision.inputs["credit_source"] == "BAMLH0A0HYM2"
    assert any("HYG turned off" in reason for reason in decision.reasons)


def test_yfinance_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "yfinance", None)  # as if not installed
    with pytest.raises(MacroDataError, match=r"pip install 'cryptobot\[yfinance\]'"):
        load_history(MacroSettings(hyg_source="yfinance"), LiveClock())
