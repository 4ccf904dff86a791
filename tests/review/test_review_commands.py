"""`cryptobot runs / trades / signals` against a store whose contents the test knows."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from cryptobot.clock import iso_utc


def test_runs_lists_mode_symbol_span_trades_and_pnl(run_cli, stored):
    url, sent = stored
    code, out, err = run_cli("runs", "--db", url)
    assert code == 0, err
    pnl = sum(trade.pnl_usdt for trade, _ in sent["trades"])
    assert "backtest" in out and "BTC/USDT:USDT" in out and "SYNTHETIC" in out
    assert "2024-08-04 00:00 .. 2024-08-07 00:00" in out
    assert f"{pnl:,.2f}" in out


def test_trades_json_matches_the_stored_trades(run_cli, stored):
    url, sent = stored
    code, out, err = run_cli("trades", "--db", url, "--json")
    assert code == 0, err
    trades = json.loads(out)["trades"]
    assert len(trades) == len(sent["trades"]) == 2
    for shown, (trade, _) in zip(trades, sent["trades"], strict=True):
        assert shown["entry_time"] == iso_utc(trade.entry_ms)
        assert shown["exit_time"] == iso_utc(trade.legs[-1].ts_ms)
        assert shown["entry_price"] == trade.entry_price and shown["qty"] == trade.qty_base
        assert shown["pnl_usdt"] == trade.pnl_usdt and shown["r_multiple"] == trade.r_multiple
        assert shown["fees_usdt"] == trade.fees_usdt
        assert shown["exit_reason"] == trade.legs[-1].reason
        assert shown["side"] == "long"  # Side.BUY: the sample run's trades are longs
        assert [leg["reason"] for leg in shown["legs"]] == [leg.reason for leg in trade.legs]
        weighted = sum(leg.price * leg.qty_base for leg in trade.legs) / sum(
            leg.qty_base for leg in trade.legs
        )
        assert shown["exit_price"] == pytest.approx(weighted, rel=1e-12)


def test_trades_csv_has_the_same_rows_plus_the_gate(run_cli, stored):
    url, sent = stored
    code, out, err = run_cli("trades", "--db", url, "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2
    for row, (trade, gate) in zip(rows, sent["trades"], strict=True):
        assert row["entry_time"] == iso_utc(trade.entry_ms)
        assert float(row["pnl_usdt"]) == trade.pnl_usdt
        assert float(row["entry_price"]) == trade.entry_price
        assert row["gate_action"] == (str(gate.action) if gate else "")
        assert row["side"] == "long"
    assert rows[0]["gate_reasons"] == "QT active"


def test_trades_table_and_since_filter(run_cli, stored):
    url, sent = stored
    first, second = (trade for trade, _ in sent["trades"])
    code, out, _ = run_cli("trades", "--db", url)
    assert code == 0
    assert "trailing_stop" in out and "stop" in out and "REDUCE x0.5: QT active" in out
    assert f"{first.entry_price:,.2f}" in out and f"{first.r_multiple:+.2f}" in out
    assert re.findall(r"^│ +(\d+) │ (\w+) +│", out, re.MULTILINE) == [("1", "long"), ("2", "long")]
    since = iso_utc(first.entry_ms + 60_000)
    code, out, _ = run_cli("trades", "--db", url, "--since", since, "--json")
    assert [t["entry_time"] for t in json.loads(out)["trades"]] == [iso_utc(second.entry_ms)]
    code, _, err = run_cli("trades", "--db", url, "--since", "yesterday-ish")
    assert code == 2 and "not a date" in err


def test_signals_say_what_happened_and_why(run_cli, stored):
    url, sent = stored
    code, out, err = run_cli("signals", "--db", url)
    assert code == 0, err
    assert "rejected: volume too low" in out
    assert "entered" in out
    assert "BLOCK: QT active; HYG down" in out
    assert "oi_change_pct" in out and "-4.20" in out and "2.10" in out
    code, out, _ = run_cli("signals", "--db", url, "--rejected")
    assert "entered" not in out.replace("rejected", "")
    assert out.count("rejected:") == 2


def test_second_run_is_the_default_and_first_is_selectable(run_cli, stored, sample_run):
    from cryptobot.clock import LiveClock
    from cryptobot.store import SqlRecorder

    url, _ = stored
    with SqlRecorder(url, clock=LiveClock()) as recorder:
        recorder.start_run(
            sample_run.RunInfo("paper", "bybit", ("ETH/USDT:USDT",), 1, None, "stream", {})
        )
        recorder.finish_run({})
    code, out, _ = run_cli("trades", "--db", url, "--json")
    assert code == 0 and json.loads(out) == {"trades": []}
    code, out, _ = run_cli("trades", "--db", url, "--json", "--run", "1")
    assert len(json.loads(out)["trades"]) == 2
    code, out, _ = run_cli("runs", "--db", url)
    assert "ETH/USDT:USDT" in out and "paper" in out


def test_db_defaults_to_the_configs_store_url(run_cli, stored, tmp_path):
    url, _ = stored
    config = tmp_path / "review.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    code, out, err = run_cli("trades", "--config", str(config), "--json")
    assert code == 0, err
    assert len(json.loads(out)["trades"]) == 2
