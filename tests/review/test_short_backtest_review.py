"""A real backtest of the short strategy (config/short_squeeze.toml on real 5m candles,
data/btc_5m_2023-11_2024-12, two weeks of August 2024) recorded into a temp SQLite store, then
reviewed: every output says the trades are shorts, and the report draws them as shorts (stop
above the entry, targets below, the entry marker pointing down).

OI confirmation is switched off: the data holds no open interest (as in the long review test).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from tests.review.test_real_backtest_review import _cli

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shorted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("short_backtest")
    config = folder / "short_no_oi.toml"
    profile = REPO_ROOT / "config" / "short_squeeze.toml"
    config.write_text(f'extends = "{profile}"\n[strategy.params]\noi_confirmation = false\n'
                      f'[logging]\ndir = "{folder / "logs"}"\n')
    url = f"sqlite:///{folder / 'run.sqlite'}"
    code, out, err = _cli(
        "backtest", "--config", str(config),
        "--data", str(REPO_ROOT / "data" / "btc_5m_2023-11_2024-12"),
        "--from", "2024-08-01", "--to", "2024-08-15", "--db", url, "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    trades = result["trades"]
    assert len(trades) >= 5, "the two weeks after the 2024-08-05 crash should hold shorts"
    assert any(leg["reason"] in ("tp1", "tp2") for trade in trades for leg in trade["legs"])
    return url, result, folder


def test_backtest_json_says_short_and_the_store_agrees(shorted):
    from cryptobot.model import Side
    from cryptobot.report.serialize import trade_to_dict
    from cryptobot.store import open_store

    url, result, _ = shorted
    assert {trade["side"] for trade in result["trades"]} == {"short"}
    for trade in result["trades"]:  # a short's stop is above its entry
        assert trade["initial_stop"] > trade["entry_price"]
    store = open_store(url)
    stored = store.trades(store.resolve_run(None))
    assert {trade.side for trade, _ in stored} == {Side.SELL}
    assert [trade_to_dict(t) for t, _ in stored] == result["trades"]


def test_short_signals_measure_the_rise_from_the_low(shorted):
    url, result, _ = shorted
    for signal in result["signals"]:
        assert "rise_from_low_pct" in signal and "drop_from_high_pct" not in signal
        assert list(signal)[6:10] == ["body_atr", "volume_ratio", "rise_from_low_pct",
                                      "oi_change_pct"]
    assert any(signal["rise_from_low_pct"] for signal in result["signals"])
    code, out, err = _cli("signals", "--db", url)
    assert code == 0, err
    assert "rise_from_low_pct" in out and "drop_from_high_pct" not in out


def test_trades_json_and_csv_say_short(shorted):
    url, result, _ = shorted
    code, out, err = _cli("trades", "--db", url, "--json")
    assert code == 0, err
    assert json.loads(out) == {"trades": result["trades"]}
    code, out, err = _cli("trades", "--db", url, "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["side"] for row in rows] == ["short"] * len(result["trades"])
    for row, trade in zip(rows, result["trades"], strict=True):
        assert row["entry_time"] == trade["entry_time"]
        assert float(row["pnl_usdt"]) == trade["pnl_usdt"]


def test_trades_table_shows_short(shorted):
    url, result, _ = shorted
    code, out, err = _cli("trades", "--db", url)
    assert code == 0, err
    rows = re.findall(r"^│ +(\d+) │ (\w+) +│ (\d{4}-\d\d-\d\d \d\d:\d\d)", out, re.MULTILINE)
    assert rows == [(str(number), "short", trade["entry_time"].replace("T", " ")[:16])
                    for number, trade in enumerate(result["trades"], start=1)]


def test_report_shows_short_trades_drawn_as_shorts(shorted):
    from cryptobot.report.build import report_data
    from cryptobot.report.render_trade import trade_figure
    from cryptobot.store import open_store

    url, result, folder = shorted
    report = folder / "report.html"
    code, _, err = _cli("report", "--db", url, "--out", str(report))
    assert code == 0, err
    page = report.read_text(encoding="utf-8")
    trades = len(result["trades"])
    assert re.findall(r'<div id="trade-(\d+)"', page) == [str(n) for n in range(1, trades + 1)]
    assert page.count("<tr><th>side</th><td>short</td></tr>") == trades
    assert "H moved (new high)" in page and "short entry" in page
    assert "L moved (new low)" not in page

    store = open_store(url)
    data = report_data(store, store.resolve_run(None))
    targets_drawn = 0
    for chart in data.trades:
        trade = chart.line.trade
        traces = trade_figure(chart, data.oi_synthetic).data
        entry = next(t for t in traces if t.name == "short entry")
        assert entry.marker.symbol == "triangle-down" and entry.y == (trade.entry_price,)
        spike = next(t for t in traces if t.name == "spike candle")
        assert spike.marker.symbol == "triangle-up"
        stops = [t for t in traces if t.name.startswith("stop")]
        assert len(stops) == 1 and stops[0].line.shape == "hv"  # one stepped line
        assert stops[0].y[0] == trade.initial_stop > trade.entry_price  # a short's stop is above
        assert list(stops[0].y) == sorted(stops[0].y, reverse=True)  # trailed down, never up
        for target in (t for t in traces if t.name.startswith(("tp1 ", "tp2 "))):
            assert max(target.y) < trade.entry_price
            targets_drawn += 1
    assert targets_drawn >= trades  # the default exits place one or two targets per trade
