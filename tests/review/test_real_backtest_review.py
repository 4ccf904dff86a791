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


@pytest.mark.browser
def test_report_in_headless_chromium_shows_what_a_trader_reads(backtested, chromium_page):
    """The crash window's report, screenshotted whole in headless chromium, and read from the
    drawn page: the summary in words, the equity with open PnL, the gate timeline with its
    reasons on hover, and each trade's chart with one stop line (stepped when it trailed)."""
    from cryptobot.report.build import report_data
    from cryptobot.store import open_store
    from tests.review.report_in_browser import PLOTS_DRAWN, what_is_seen

    url, result, folder = backtested
    report = folder / "report.html"
    code, out, err = _cli("report", "--db", url, "--out", str(report))
    assert code == 0, err
    page = report.read_text(encoding="utf-8")
    trades = len(result["trades"])
    assert re.findall(r'<div id="trade-(\d+)"', page) == [str(n) for n in range(1, trades + 1)]
    assert re.search(r"<(script|link)\b[^>]*\b(src|href)\s*=\s*[\"']?(https?:)?//", page) is None
    store = open_store(url)
    data = report_data(store, store.resolve_run(None))
    store.close()

    chromium_page.open(report, PLOTS_DRAWN)
    width, height = chromium_page.screenshot(folder / "report.png")
    assert width == 1400 and height > 1000 * trades  # a summary, a table and a chart per trade
    seen = what_is_seen(chromium_page)

    summary = dict(seen["summaryRows"])
    assert summary["Trades"] == str(trades)
    total = sum(trade["pnl_usdt"] for trade in result["trades"])
    assert summary["Net PnL (after fees and funding)"].startswith(f"{total:+,.2f} USDT (")
    closed_dd = float(summary["Max drawdown, closed trades only"].split()[0].replace(",", ""))
    marked_dd = summary["Max drawdown, open trades marked to market each candle"]
    assert float(marked_dd.split()[0].replace(",", "")) > closed_dd  # open losses count
    for raw in ("total pnl usdt", "average r", "win rate pct", "open position:", "=None"):
        assert raw not in seen["bodyText"]

    equity_title = seen["titles"][0]
    assert "marked to market" in equity_title and "open trades' PnL counts" in equity_title
    assert seen["legend"][:2] == ["equity marked to market", "realised equity"]
    assert seen["markedLine"] and len(seen["marked"]) > 2000  # a point per 15m candle close
    assert min(seen["marked"]) < min(seen["realised"])  # the dip of a trade still open
    assert seen["yTicks"] and all(re.fullmatch(r"\d{1,3}(,\d{3})*(\.\d+)? USDT", tick)
                                  for tick in seen["yTicks"])

    assert seen["gateRows"] == ["ALLOW", "REDUCE", "BLOCK"]
    assert seen["gateBars"] == len(data.gate_timeline) > 20  # a bar per stored decision
    first = data.gate_timeline[0]
    assert first.action in seen["hover"] and first.reasons[1] in seen["hover"]

    assert [t["id"] for t in seen["trades"]] == [f"trade-{n}" for n in range(1, trades + 1)]
    for drawn, trade in zip(seen["trades"], result["trades"], strict=True):
        assert drawn["candleLayers"] == 1
        assert len(drawn["stops"]) == 1 and drawn["stopLine"], drawn["legend"]
        steps = drawn["stopLine"].count("V")
        if trade["exit_reason"] == "trailing_stop":
            assert drawn["stops"][0].startswith("stop (trailed: ") and steps > 1
    assert any(t["exit_reason"] == "trailing_stop" for t in result["trades"])
