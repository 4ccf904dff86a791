"""The Parquet store (append, de-duplicate, atomic) and the `cryptobot data` commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptobot.clock import SimClock, parse_utc
from cryptobot.data import load_market_data
from cryptobot.data.importer import import_files
from cryptobot.data.market_store import MarketStore
from cryptobot.errors import DataError
from cryptobot.exchange.loopback_rest import FaultPlan, LoopbackRestServer

ROOT = Path(__file__).resolve().parents[2]
CRASH = ROOT / "data" / "btc_2024-08_crash"
CRASH_CANDLES = CRASH / "binance_um_BTCUSDT_5m_2024-08-05_window.csv"
CALM = ROOT / "data" / "btc_2024-05_calm"
SYMBOL = "BTC/USDT:USDT"


def _split(tmp_path: Path) -> tuple[Path, Path]:
    """The crash candles as two overlapping files."""
    lines = CRASH_CANDLES.read_text().splitlines(keepends=True)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("".join(lines[:5000]))
    second.write_text("".join(lines[:1] + lines[4000:]))
    return first, second


def test_append_deduplicates_and_store_loads_like_the_folder(tmp_path):
    store = MarketStore(tmp_path / "store")
    first, second = _split(tmp_path)
    import_files(store, "binanceusdm", SYMBOL, [first])
    (result,) = import_files(store, "binanceusdm", SYMBOL, [second])
    assert result.rows_added == 8352 - 4999
    import_files(store, "binanceusdm", SYMBOL, sorted(CRASH.glob("*.csv")))
    from_store = load_market_data(store.root, SYMBOL)
    from_folder = load_market_data(CRASH, SYMBOL)
    assert from_store.candles.equals(from_folder.candles)
    assert from_store.open_interest.equals(from_folder.open_interest)
    assert from_store.funding.equals(from_folder.funding)
    assert from_store.oi_synthetic and {"a.csv", "b.csv"} <= set(from_store.sources)


def test_bad_file_leaves_the_store_untouched(tmp_path):
    store = MarketStore(tmp_path / "store")
    import_files(store, "binanceusdm", SYMBOL, [CRASH_CANDLES])
    stored = store.read("binanceusdm", SYMBOL, "candles", 300_000).path
    before = stored.read_bytes()
    lines = CRASH_CANDLES.read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.csv"
    ts_ms, ts_utc = lines[3].split(",")[:2]
    broken = f"{ts_ms},{ts_utc},1,2,3,1.5,10\n"  # low above open and close
    bad.write_text("".join(lines[:3] + [broken] + lines[4:50]))
    good_oi = CALM / "binance_BTCUSDT_5m_oi_2024-05-09_2024-05-11.csv"
    with pytest.raises(DataError, match=r"bad.csv line 4: high 2.0 is below low 3.0"):
        import_files(store, "binanceusdm", SYMBOL, [good_oi, bad])
    assert stored.read_bytes() == before
    assert store.read("binanceusdm", SYMBOL, "open_interest") is None  # nothing half-imported
    assert not [p for p in stored.parent.iterdir() if p.name.endswith(".tmp")]


def test_store_for_another_symbol_names_what_is_there(tmp_path):
    store = MarketStore(tmp_path / "store")
    import_files(store, "binanceusdm", SYMBOL, [CRASH_CANDLES])
    with pytest.raises(DataError, match=r"no binanceusdm ETH/USDT:USDT candles stored \(stored: "
                                        r"binanceusdm BTC/USDT:USDT\)"):
        load_market_data(store.root, "ETH/USDT:USDT")


def test_cli_import_then_info(run_cli, tmp_path):
    store = tmp_path / "store"
    files = [str(p) for p in CRASH.glob("*.csv")]
    code, out, err = run_cli("data", "import", "--store", str(store), *files)
    assert (code, err) == (0, ""), err
    assert "SYNTHETIC" in out and "8352" in out
    code, out, err = run_cli("data", "info", "--store", str(store))
    assert code == 0 and "open_interest" in out and "SYNTHETIC" in out and "8352" in out


def test_cli_import_of_a_bundled_folder_skips_its_notes(run_cli, tmp_path):
    store = tmp_path / "store"
    code, out, err = run_cli("data", "import", "--store", str(store), str(CRASH),
                             str(ROOT / "data" / "README.md"))
    assert (code, err) == (0, ""), err
    assert "skipped" in out and "SYNTHETIC_OI_METHOD.md: not a data file" in out
    assert "README.md: a note, not data" in out and "8352" in out
    code, _, err = run_cli("data", "import", "--store", str(store),
                           str(CRASH / "SYNTHETIC_OI_METHOD.md"))
    assert code == 2 and err == "error: no data files to import\n"


def test_cli_errors_are_one_line_exit_2(run_cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("open_time_ms,open_time_utc,open,high,low,close,volume\n"
                   "1721606400000,x,1,2,0.5,1.5,-3\n")
    code, out, err = run_cli("data", "import", "--store", str(tmp_path / "s"), str(bad))
    assert code == 2 and err.strip().count("\n") == 0
    assert err.startswith(f"error: {bad} line 2: volume -3.0 is negative")
    assert not (tmp_path / "s").exists()
    code, _, err = run_cli("data", "info", "--store", str(tmp_path / "nothing"))
    assert code == 2 and err.startswith("error:") and err.strip().count("\n") == 0
    code, _, err = run_cli("data", "import", "--store", str(tmp_path / "s"),
                           str(tmp_path / "missing.csv"))
    assert code == 2 and "missing.csv: cannot read" in err
    code, _, err = run_cli("data", "download", "--since", "yesterday-ish",
                           "--store", str(tmp_path / "s"))
    assert code == 2 and "--since 'yesterday-ish' is not a date" in err
    code, out, err = run_cli("data", "download", "--since", "2024-08-01", "--timeframe", "7x",
                             "--store", str(tmp_path / "s"), "--rest-url", "http://127.0.0.1:9")
    assert code == 2 and err.strip() == ("error: --timeframe: unknown timeframe '7x' "
                                         "(expected e.g. 1m, 5m, 15m, 1h, 1d)")


def test_cli_download_against_loopback_with_429(run_cli, tmp_path):
    market = load_market_data(CALM, SYMBOL)
    server = LoopbackRestServer(market, clock=SimClock(parse_utc("2025-01-01")),
                                faults=FaultPlan(rate_limit_every=2, retry_after_s=0))
    store = tmp_path / "store"
    with server as base_url:
        code, out, err = run_cli("data", "download", "--timeframe", "15m", "--since",
                                 "2024-05-02", "--until", "2024-05-04", "--store", str(store),
                                 "--rest-url", base_url)
    assert code == 0, err
    assert server.faults.rate_limited >= 1
    assert "last 30 days only" in out and "metrics" in out
    stored = MarketStore(store).read("binanceusdm", SYMBOL, "candles", 900_000).frame
    assert len(stored) == 2 * 96 and stored["ts_open_ms"][0] == parse_utc("2024-05-02")
