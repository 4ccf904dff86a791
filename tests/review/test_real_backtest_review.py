"""A real backtest (bundled 2024-08 crash window, real 5m candles + its labelled SYNTHETIC OI)
recorded into a temp SQLite store, then reviewed: every review output must agree with what the
backtest itself printed and with the stored trades.

OI confirmation is switched off so the window makes trades to review (with it on, the synthetic
OI path confirms none of them); everything else is config/default.toml, macro gate included.
"""

from __future__ import annotations

import csv
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _cli(*args: str) -> tuple[int, str, str]:
    from cryptobot.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def backtested(tmp_path_factory):
    pytest.importorskip("cryptobot.runners.backtest")
    folder = tmp_path_factory.mktemp("real_backtest")
    config = folder / "no_oi.toml"
    default = REPO_ROOT / "config" / "default.toml"
    config.write_text(f'extends = "{default}"\n[strategy.params]\noi_confirmation = false\n'
                      f'[logging]\ndir = "{folder / "logs"}"\n')
    url = f"sqlite:///{folder / 'run.sqlite'}"
    code, out, err = _cli(
        "backtest",
        "--config",
        str(config),
        "--data",
        str(REPO_ROOT / "data" / "btc_2024-08_crash"),
        "--db",
        url,
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["trades"], "the window should trade with OI confirmation off"
    assert {trade["side"] for trade in result["trades"]} == {"long"}
    return url, result, folder


def test_store_holds_exactly_the_backtests_trades(backtested):
    from cryptobot.report.serialize import trade_to_dict
    from cryptobot.store import open_store

    url, result, _ = backtested
    store = open_store(url)
    run = store.resolve_run(None)
    assert [trade_to_dict(t) for t, _ in store.trades(run)] == result["trades"]
    assert len(store.signals(run)) == len(result["signals"])
    assert len(store.candles(run)) > 2000  # every 15m candle of the window, for the charts
    assert store.oi_synthetic(run)
    gates = [gate for _, gate in store.trades(run)]
    assert all(gate is not None for gate in gates)


def test_trades_json_is_the_backtests_trades(backtested):
    url, result, _ = backtested
    code, out, err = _cli("trades", "--db", url, "--json")
    assert code == 0, err
    assert json.loads(out) == {"trades": result["trades"]}


def test_trades_csv_rows_match(backtested):
    from cryptobot.store import open_store

    url, result, _ = backtested
    code, out, err = _cli("trades", "--db", url, "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    stored = open_store(url).trades(1)
    assert len(rows) == len(result["trades"]) == len(stored)
    for row, trade, (_, gate) in zip(rows, result["trades"], stored, strict=True):
        for key in ("entry_time", "exit_time", "exit_reason", "signal_id"):
            assert row[key] == trade[key]
        for key in ("qty", "entry_price", "exit_price", "pnl_usdt", "fees_usdt", "r_multiple"):
            assert float(row[key]) == trade[key]
        assert int(row["legs"]) == len(trade["legs"])
        assert row["gate_action"] == str(gate.action)


def test_trades_table_runs_and_signals(backtested):
    url, result, _ = backtested
    code, out, _ = _cli("trades", "--db", url)
    assert code == 0
    for trade in result["trades"]:
        assert trade["entry_time"].replace("T", " ")[:16] in out
        assert f"{trade['pnl_usdt']:,.2f}" in out
    code, out, _ = _cli("runs", "--db", url)
    total = sum(trade["pnl_usdt"] for trade in result["trades"])
    assert code == 0 and f"{total:,.2f}" in out and str(len(result["trades"])) in out
    code, out, _ = _cli("signals", "--db", url)
    assert code == 0
    spikes = re.findall(r"^│ (\d{4}-\d\d-\d\d \d\d:\d\d)", out, re.MULTILINE)
    assert spikes == [s["time"].replace("T", " ")[:16] for s in result["signals"]]
    rejected = [s for s in result["signals"] if s["status"] == "rejected"]
    code, out, _ = _cli("signals", "--db", url, "--rejected")
    assert out.count("rejected: ") == len(rejected)
    for signal in rejected:
        assert signal["reason"][:20] in out


def test_report_has_one_chart_per_trade_and_renders(backtested, render_in_chromium):
    url, result, folder = backtested
    report = folder / "report.html"
    code, out, err = _cli("report", "--db", url, "--out", str(report))
    assert code == 0, err
    page = report.read_text(encoding="utf-8")
    trades = len(result["trades"])
    assert re.findall(r'<div id="trade-(\d+)"', page) == [str(n) for n in range(1, trades + 1)]
    assert re.search(r"<(script|link)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//", page) is None
    for trade in result["trades"]:
        assert f"{trade['entry_price']:,.2f}" in page
    counter = render_in_chromium(report)
    assert len(counter.plot_ids) == trades + 1  # one per trade plus equity/drawdown
    assert counter.candlestick_layers >= trades
