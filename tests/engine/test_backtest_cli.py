"""`cryptobot backtest` end to end: JSON shape, determinism, and one clear error per bad input."""

from __future__ import annotations

import json
import shutil

from cryptobot.clock import LiveClock, parse_utc
from cryptobot.clock import iso_utc as iso
from cryptobot.logs import process_log_path
from tests.engine.conftest import REPO

CRASH = str(REPO / "data" / "btc_2024-08_crash")
DEFAULT = str(REPO / "config" / "default.toml")


def _config(tmp_path, extra: str = "") -> str:
    """config/default.toml with the JSON log in tmp_path/logs (and any `extra` TOML)."""
    path = tmp_path / "default.toml"
    path.write_text(f'extends = "{DEFAULT}"\n[logging]\ndir = "{tmp_path / "logs"}"\n{extra}')
    return str(path)


def _log_lines(tmp_path) -> list[dict]:
    import logging

    for handler in logging.getLogger("cryptobot").handlers:
        handler.flush()
    text = process_log_path(tmp_path / "logs").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _json_run(run_cli, tmp_path, *extra):
    code, out, err = run_cli("backtest", "--config", _config(tmp_path), "--data", CRASH,
                             "--symbol",
                             "BTC/USDT:USDT", "--from", "2024-08-01", "--to", "2024-08-10",
                             "--db", f"sqlite:///{tmp_path / 'runs.sqlite'}", "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_json_is_one_object_with_the_issue_fields(run_cli, tmp_path):
    result = _json_run(run_cli, tmp_path)
    assert set(result) == {"summary", "trades", "signals", "candles_processed", "elapsed_s",
                           "load_s", "run_id", "db", "log"}
    assert result["elapsed_s"] > 0 and result["load_s"] > 0
    assert result["run_id"] == result["summary"]["run_id"]
    assert result["db"] == f"sqlite:///{tmp_path / 'runs.sqlite'}"
    assert result["candles_processed"] == 10 * 288
    assert result["summary"]["oi_synthetic"] is True
    signal = result["signals"][0]
    for key in ("time", "status", "reason", "body_atr", "volume_ratio", "drop_from_high_pct",
                "oi_change_pct", "setup_events"):
        assert key in signal
    assert signal["time"].endswith("Z") and len(signal["time"]) == 20


def test_two_cli_runs_are_identical_but_for_elapsed_and_run_id(run_cli, tmp_path):
    settings_off = tmp_path / "off.toml"
    settings_off.write_text(f'extends = "{_config(tmp_path)}"\n[strategy.params]\n'
                            'oi_confirmation = false\n')
    code, out_a, err = run_cli("backtest", "--config", str(settings_off), "--data", CRASH,
                               "--db", f"sqlite:///{tmp_path / 'a.sqlite'}", "--json")
    assert code == 0, err
    code, out_b, _ = run_cli("backtest", "--config", str(settings_off), "--data", CRASH,
                             "--db", f"sqlite:///{tmp_path / 'a.sqlite'}", "--json")
    a, b = json.loads(out_a), json.loads(out_b)
    assert a["trades"], "this profile trades on the crash window"
    trade = a["trades"][0]
    for key in ("entry_time", "exit_time", "side", "qty", "entry_price", "exit_price",
                "pnl_usdt", "fees_usdt", "r_multiple", "exit_reason", "legs"):
        assert key in trade
    assert int(b["run_id"]) == int(a["run_id"]) + 1  # the same store: the next run
    for run in (a, b):
        run.pop("elapsed_s")
        run.pop("load_s")
        run.pop("run_id")
        run["summary"].pop("run_id")
    assert a == b


def test_table_output_names_synthetic_oi(run_cli, tmp_path):
    db = f"sqlite:///{tmp_path / 'r.sqlite'}"
    code, out, err = run_cli("backtest", "--config", _config(tmp_path), "--data", CRASH,
                             "--db", db)
    assert code == 0, err
    assert "SYNTHETIC" in out and "buy and hold" in out and "max drawdown" in out
    # it ends by saying where the run is and how to review it; that command works
    assert f"stored in {db} (run 1)" in out
    assert f"cryptobot report --db {db} --run 1 --out report.html" in out
    code, out, err = run_cli("report", "--db", db, "--run", "1", "--out",
                             str(tmp_path / "report.html"))
    assert code == 0 and "run 1" in out, err


def test_a_backtest_logs_its_signals_orders_and_fills_at_simulated_time(run_cli, tmp_path):
    config = _config(tmp_path, "[strategy.params]\noi_confirmation = false\n")
    started = iso(LiveClock().now_ms())
    code, out, err = run_cli("backtest", "--config", config, "--data", CRASH, "--from",
                             "2024-08-03", "--to", "2024-08-06", "--db",
                             f"sqlite:///{tmp_path / 'l.sqlite'}", "--json")
    assert code == 0, err
    result = json.loads(out)
    lines = _log_lines(tmp_path)
    events = [line["event"] for line in lines if "event" in line]
    assert events[0] == "run_start" and events[-1] == "run_finish"
    assert events.count("signal") == len(result["signals"]) > 0
    assert events.count("trade") == len(result["trades"]) > 0
    fills = [line for line in lines if line.get("event") == "fill"]
    assert len(fills) >= 2 * len(result["trades"])  # an entry and at least one exit each
    assert {line["run_id"] for line in lines if "event" in line} == {result["run_id"]}
    # stamped with the simulated time the event happened, not when the backtest ran
    first_trade = result["trades"][0]
    entry = next(line for line in fills if line["purpose"] == "entry")
    assert entry["fill_time"] == first_trade["entry_time"] and "time" not in entry
    # (the run's time, which never goes back: at or just after the fill's own candle)
    assert 0 <= entry["ts_ms"] - parse_utc(entry["fill_time"]) <= 15 * 60_000
    assert all("2024-08-03" <= iso(line["ts_ms"]) <= "2024-08-07T00:00:00Z" for line in lines)
    assert all(line["wall_time"] >= started for line in lines)  # and the real time beside it
    assert result["log"] == str(process_log_path(tmp_path / "logs"))


def test_from_before_the_data_is_one_clear_error(run_cli, tmp_path):
    code, out, err = run_cli("backtest", "--config", _config(tmp_path), "--data", CRASH,
                             "--from", "2024-05-01", "--db", f"sqlite:///{tmp_path / 'e.sqlite'}")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: ") and "2024-05-01" in err


def test_a_short_warm_up_is_reported(run_cli, tmp_path):
    code, out, err = run_cli("backtest", "--config", _config(tmp_path), "--data", CRASH,
                             "--from", "2024-08-02", "--to", "2024-08-03",
                             "--db", f"sqlite:///{tmp_path / 'w.sqlite'}", "--json")
    assert code == 0, err
    warmup = json.loads(out)["summary"]["warmup"]
    assert warmup.startswith("short: 11d00h of the 31d wanted")  # the data starts 2024-07-22


def test_strategy_that_does_not_import_is_one_clear_error(run_cli, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(f'extends = "{DEFAULT}"\n[strategy]\npath = "strategies.nope:Nope"\n')
    code, out, err = run_cli("backtest", "--config", str(config), "--data", CRASH)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "strategies.nope" in err and "Traceback" not in err


def test_config_value_out_of_range_is_one_clear_error(run_cli, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text(f'extends = "{DEFAULT}"\n[risk]\nrisk_per_trade = 5.0\n')
    code, _, err = run_cli("backtest", "--config", str(config), "--data", CRASH)
    assert code == 2 and "risk.risk_per_trade" in err and err.count("\n") == 1


def test_hole_longer_than_an_hour_needs_allow_gaps(run_cli, tmp_path):
    folder = tmp_path / "holed"
    folder.mkdir()
    source = REPO / "data" / "btc_2024-08_crash" / "binance_um_BTCUSDT_5m_2024-08-05_window.csv"
    lines = source.read_text().splitlines(keepends=True)
    (folder / source.name).write_text("".join(lines[:2000] + lines[2020:]))  # 100 min missing
    code, _, err = run_cli("backtest", "--config", DEFAULT, "--data", str(folder),
                           "--db", f"sqlite:///{tmp_path / 'g.sqlite'}")
    assert code == 2 and "--allow-gaps" in err and err.count("\n") == 1
    code, _, err = run_cli("backtest", "--config", DEFAULT, "--data", str(folder),
                           "--db", f"sqlite:///{tmp_path / 'g.sqlite'}", "--allow-gaps", "--json")
    assert code == 0, err
    shutil.rmtree(folder)


def test_the_store_gets_every_signal_candle_and_the_oi_samples(run_cli, tmp_path):
    """Skipped signal candles go to the store in bulk, the OI samples one by one; both read
    back in time order (the report's candle and OI panes)."""
    from cryptobot.store.reader import open_store

    url = f"sqlite:///{tmp_path / 'runs.sqlite'}"
    result = _json_run(run_cli, tmp_path)
    run = open_store(url).load_run(int(result["summary"]["run_id"]))
    starts = [c.ts_open_ms for c in run.candles]
    assert len(starts) == 10 * 96 and starts == sorted(set(starts))
    assert starts[0] == 1_722_470_400_000  # 2024-08-01 00:00
    oi = [s.ts_ms for s in run.oi_samples]
    assert len(oi) > 1000 and oi == sorted(set(oi))


import pytest  # noqa: E402


@pytest.mark.parametrize("path", [[], ["--every-candle"]])
def test_signal_timeframe_not_a_multiple_of_the_data_is_one_clear_error(run_cli, tmp_path, path):
    """7m on 5m data: buckets would straddle base candles. Both paths refuse it the same way."""
    config = _config(tmp_path, '[market]\nsignal_timeframe = "7m"\n')
    code, out, err = run_cli("backtest", "--config", config, "--data", CRASH, "--from",
                             "2024-08-04", "--to", "2024-08-05",
                             "--db", f"sqlite:///{tmp_path / 'r.sqlite'}", *path)
    assert code == 2, out
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "market.signal_timeframe '7m'" in err and "5m" in err


def test_the_engine_refuses_base_candles_that_do_not_divide_the_signal_timeframe():
    """Paper and live feed the engine directly: the same error at the first candle."""
    from cryptobot.errors import ConfigError
    from tests.engine.conftest import make_engine, path_candles, settings_with

    engine, _, _ = make_engine(settings_with(market={"signal_timeframe": "7m"}))
    with pytest.raises(ConfigError, match="not a whole multiple"):
        engine.warm_up(path_candles([(100, 101, 99, 100)]))


def test_a_backtest_without_from_and_to_stores_the_span_it_traded(run_cli, tmp_path):
    """Not "- .. -": the store gets the same [start, end) as the run's own summary."""
    from cryptobot.store.reader import StoreReader

    db = f"sqlite:///{tmp_path / 'span.sqlite'}"
    code, out, err = run_cli("backtest", "--config", _config(tmp_path), "--data", CRASH,
                             "--db", db, "--json")
    assert code == 0, err
    summary = json.loads(out)["summary"]
    reader = StoreReader(db)
    info = reader.run_info(reader.resolve_run(None))
    reader.close()
    assert (iso(info.start_ms), iso(info.end_ms)) == (summary["from"], summary["to"])
    # the data: 2024-07-22 00:00 to the close of its last candle, 2024-08-19 23:55
    assert summary["from"] == "2024-07-22T00:00:00Z" and summary["to"] == "2024-08-20T00:00:00Z"


TWO_SYMBOLS = str(REPO / "data" / "btc_eth_2024-08_15m")


def _two_symbol_config(tmp_path, extra: str = "") -> str:
    """Real 15m BTC and ETH candles with no open interest: OI confirmation off."""
    return _config(tmp_path, '[market]\nbase_timeframe = "15m"\n[strategy.params]\n'
                             f'oi_confirmation = false\n{extra}')


def test_two_symbols_in_one_backtest_with_a_portfolio_cap(run_cli, tmp_path):
    config = _two_symbol_config(tmp_path, "[portfolio]\nmax_open_positions = 1\n")
    code, out, err = run_cli("backtest", "--config", config, "--data", TWO_SYMBOLS,
                             "--symbol", "BTC/USDT:USDT, ETH/USDT:USDT", "--json",
                             "--db", f"sqlite:///{tmp_path / 'runs.sqlite'}")
    assert code == 0, err
    result = json.loads(out)
    summary = result["summary"]
    assert list(summary["symbols"]) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert {t["symbol"] for t in result["trades"]} == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert summary["trades"] == len(result["trades"]) == sum(
        one["trades"] for one in summary["symbols"].values())
    refused = [s for s in result["signals"] if s["reason"].startswith("portfolio:")]
    assert refused and all("max_open_positions 1" in s["reason"] for s in refused)
    assert result["candles_processed"] == 2 * 2784  # 2024-07-22 .. 08-19 of 15m, each symbol
    code, out, err = run_cli("backtest", "--config", config, "--data", TWO_SYMBOLS,
                             "--symbol", "BTC/USDT:USDT,ETH/USDT:USDT",
                             "--db", f"sqlite:///{tmp_path / 'runs.sqlite'}")
    assert code == 0, err
    assert "by symbol" in out and "ETH/USDT:USDT" in out


def test_bad_symbol_lists_are_one_clear_error(run_cli, tmp_path):
    config = _two_symbol_config(tmp_path)
    for symbols, message in (("BTC/USDT:USDT,,ETH/USDT:USDT", "an empty item"),
                             ("BTC/USDT:USDT,BTCUSDT", "BTCUSDT is listed twice")):
        code, out, err = run_cli("backtest", "--config", config, "--data", TWO_SYMBOLS,
                                 "--symbol", symbols, "--json")
        assert code == 2 and out == "" and message in err and err.count("\n") == 1, err
