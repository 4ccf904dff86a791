"""Reviewing a run of several symbols through the CLI: `runs` lists them, `trades`, `signals`
and `report` take --symbol, the report has the portfolio's equity and a section per symbol.

The store holds the one-symbol sample run (run 1) and the SCRIPTED two-symbol run on real BTC
and ETH candles (run 2, tests/store/two_symbol_run.py), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests.store.backends import BACKENDS, backend_url, record_sample
from tests.store.two_symbol_run import BTC, ETH, SYMBOLS, record_scripted_two_symbol_run

SECTION = re.compile(r"<section class='symbol' id='symbol-([^']+)'>")


@pytest.fixture(params=BACKENDS)
def two_runs(request, tmp_path, sample_run):
    from cryptobot.clock import LiveClock
    from cryptobot.store import SqlRecorder

    for url in backend_url(request, tmp_path):
        record_sample(url, sample_run)
        with SqlRecorder(url, clock=LiveClock()) as recorder:
            yield url, record_scripted_two_symbol_run(recorder)


def _trade_rows(out: str) -> list[tuple[str, ...]]:
    return re.findall(r"^│ +(\d+) │ ([A-Z]+/USDT:USDT) +│ (\w+) +│", out, re.MULTILINE)


def test_runs_lists_each_runs_symbols(run_cli, two_runs):
    url, _ = two_runs
    code, out, err = run_cli("runs", "--db", url)
    assert code == 0, err
    assert "symbols" in out and f"{BTC}, {ETH}" in out
    first = next(line for line in out.splitlines() if re.match(r"│ +1 │", line))
    assert BTC in first and ETH not in first


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_trades_json_for_one_symbol_holds_only_its_trades(run_cli, two_runs, symbol):
    url, sent = two_runs
    code, out, err = run_cli("trades", "--db", url, "--symbol", symbol, "--json")
    assert code == 0, err
    shown = json.loads(out)["trades"]
    mine = sent["by_symbol"][symbol]["trades"]
    assert [t["signal_id"] for t in shown] == [t.signal_id for t, _ in mine]
    assert {t["symbol"] for t in shown} == {symbol} and len(shown) == (2 if symbol == BTC else 1)


def test_every_exported_trade_names_its_symbol(run_cli, two_runs):
    url, sent = two_runs
    code, out, err = run_cli("trades", "--db", url, "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["symbol"] for row in rows] == [t.symbol for t, _ in sent["trades"]]
    assert [row["symbol"] for row in rows] == [BTC, ETH, BTC]
    code, out, _ = run_cli("trades", "--db", url, "--json")
    assert [t["symbol"] for t in json.loads(out)["trades"]] == [BTC, ETH, BTC]


def test_the_trades_table_has_a_symbol_column_only_for_several_symbols(run_cli, two_runs):
    url, _ = two_runs
    code, out, err = run_cli("trades", "--db", url)
    assert code == 0, err
    assert _trade_rows(out) == [("1", BTC, "long"), ("2", ETH, "long"), ("3", BTC, "long")]
    code, out, _ = run_cli("trades", "--db", url, "--symbol", "ETHUSDT")  # the exchange's id
    assert _trade_rows(out) == [("1", ETH, "long")] and "Trades of run 2 (ETH/USDT:USDT)" in out
    code, out, _ = run_cli("trades", "--db", url, "--run", "1")
    assert code == 0 and "symbol" not in out.splitlines()[2] and _trade_rows(out) == []


def test_a_symbol_list_keeps_the_runs_order(run_cli, two_runs):
    url, _ = two_runs
    code, out, err = run_cli("trades", "--db", url, "--symbol", f"{ETH}, btc/usdt:usdt",
                             "--json")
    assert code == 0, err
    assert [t["symbol"] for t in json.loads(out)["trades"]] == [BTC, ETH, BTC]


def test_signals_for_one_symbol(run_cli, two_runs):
    url, _ = two_runs
    code, out, err = run_cli("signals", "--db", url, "--symbol", ETH)
    assert code == 0, err
    assert "rejected: portfolio: max_open_positions 1 reached" in out
    symbols = re.findall(r"^│ ([A-Z]+/USDT:USDT) +│", out, re.MULTILINE)
    assert symbols == [ETH, ETH]
    code, out, _ = run_cli("signals", "--db", url, "--symbol", BTC, "--rejected")
    assert code == 0 and f"Run 2 has no rejected signals of {BTC}." in out


@pytest.mark.parametrize("command", [("trades",), ("trades", "--json"), ("signals",),
                                     ("report", "--out", "r.html")])
def test_a_symbol_the_run_does_not_hold_is_one_error_line(run_cli, two_runs, tmp_path,
                                                          monkeypatch, command):
    url, _ = two_runs
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*command, "--db", url, "--symbol", f"{ETH},SOL/USDT:USDT")
    assert code == 2 and "Traceback" not in out + err
    assert err == f"error: --symbol SOL/USDT:USDT: run 2 holds {BTC}, {ETH}\n"
    assert not (tmp_path / "r.html").exists()
    code, _, err = run_cli(*command, "--db", url, "--symbol", ETH, "--run", "1")
    assert code == 2 and err == f"error: --symbol {ETH}: run 1 holds {BTC}\n"


def _report(run_cli, url: str, out, *extra: str) -> str:
    code, stdout, err = run_cli("report", "--db", url, "--out", str(out), *extra)
    assert code == 0, err
    return out.read_text(encoding="utf-8")


def _sections(page: str) -> dict[str, str]:
    """Each symbol section's HTML (up to the next one, or the page's end), by its id."""
    parts = SECTION.split(page.split("</body>")[0])
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def test_the_report_has_a_portfolio_curve_and_a_section_per_symbol(run_cli, two_runs, tmp_path):
    url, _ = two_runs
    page = _report(run_cli, url, tmp_path / "report.html")
    sections = _sections(page)
    assert list(sections) == ["BTC-USDT-USDT", "ETH-USDT-USDT"]
    assert page.count('<div id="summary-equity"') == 1
    assert page.index('<div id="summary-equity"') < page.index("<section class='symbol'")
    assert "Portfolio equity (all symbols), USDT" in page and "<h2>Portfolio</h2>" in page
    btc, eth = sections["BTC-USDT-USDT"], sections["ETH-USDT-USDT"]
    assert re.findall(r'<div id="(price-[^"]+|trade-\d+)"', btc) == [
        "price-BTC-USDT-USDT", "trade-1", "trade-3"]
    assert re.findall(r'<div id="(price-[^"]+|trade-\d+)"', eth) == [
        "price-ETH-USDT-USDT", "trade-2"]
    # each symbol's own figures: BTC lost both trades, ETH won its one and had one refused
    assert "<tr><th>Trades</th><td>2</td></tr>" in btc
    assert "<tr><th>Win rate</th><td>0.00% (0 of 2 trades won)</td></tr>" in btc
    assert "<tr><th>Trades</th><td>1</td></tr>" in eth
    assert "<tr><th>Win rate</th><td>100.00% (1 of 1 trades won)</td></tr>" in eth
    assert "<tr><th>Signals refused by the portfolio caps</th><td>1</td></tr>" in eth
    assert "Open interest (SYNTHETIC)" in btc and "SYNTHETIC" not in eth  # ETH has no OI
    assert "Open interest (none recorded)" in eth and "Open interest (none" not in btc
    assert "portfolio: max_open_positions 1 reached" in eth and "portfolio:" not in btc


def test_report_for_one_symbol_keeps_the_portfolio_curve(run_cli, two_runs, tmp_path):
    from cryptobot.report.build import report_data
    from cryptobot.store import open_store

    url, sent = two_runs
    page = _report(run_cli, url, tmp_path / "eth.html", "--symbol", ETH)
    assert list(_sections(page)) == ["ETH-USDT-USDT"]
    assert '<div id="summary-equity"' in page and "<tr><th>shown here</th><td>" in page
    assert re.findall(r'<div id="(trade-\d+)"', page) == ["trade-1"]  # ETH's only trade
    store = open_store(url)
    only_eth = report_data(store, 2, (ETH,))
    assert only_eth.equity == report_data(store, 2).equity == sent["equity"]
    assert [chart.line.trade.symbol for chart in only_eth.trades] == [ETH]
    store.close()


def test_a_one_symbol_runs_report_looks_as_before(run_cli, two_runs, tmp_path):
    url, _ = two_runs
    page = _report(run_cli, url, tmp_path / "one.html", "--run", "1")
    assert SECTION.search(page) is None and "Portfolio" not in page
    assert "<h2>Summary</h2>" in page and "<h2>Signals (3)</h2>" in page
    assert "<tr><th>symbol</th><td>BTC/USDT:USDT</td></tr>" in page


@pytest.mark.browser
def test_the_two_symbol_report_renders_in_headless_chromium(run_cli, two_runs, tmp_path,
                                                            render_in_chromium):
    url, sent = two_runs
    report = tmp_path / "report.html"
    _report(run_cli, url, report)
    counter = render_in_chromium(report)
    trades = len(sent["trades"])
    assert sorted(counter.plot_ids) == sorted(
        ["summary-equity", "price-BTC-USDT-USDT", "price-ETH-USDT-USDT",
         *(f"trade-{n}" for n in range(1, trades + 1))])
    assert counter.candlestick_layers >= trades + 2
