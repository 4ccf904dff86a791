"""`cryptobot report`: one self-contained HTML file, one chart per trade, checked in chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

NETWORK_REFERENCE = re.compile(
    r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?\s*(https?:)?//", re.IGNORECASE
)


def _write_report(run_cli, url: str, out: Path, *extra: str) -> str:
    code, stdout, err = run_cli("report", "--db", url, "--out", str(out), *extra)
    assert code == 0, err
    assert f"wrote {out}" in stdout
    return out.read_text(encoding="utf-8")


def test_report_is_self_contained_with_one_chart_per_trade(run_cli, stored, tmp_path):
    url, sent = stored
    page = _write_report(run_cli, url, tmp_path / "nested" / "report.html")
    assert NETWORK_REFERENCE.search(page) is None
    assert "Plotly" in page and len(page) > 1_000_000  # plotly.js itself is inlined
    trade_divs = re.findall(r'<div id="(trade-\d+)"', page)
    assert trade_divs == [f"trade-{n}" for n in range(1, len(sent["trades"]) + 1)]
    assert '<div id="summary-equity"' in page
    assert "Open interest (SYNTHETIC)" in page
    assert "rejected: gate BLOCK: QT active; HYG down" in page
    assert "spike candle" in page and "confirming candle" in page and "L moved" in page
    assert page.count("<tr><th>side</th><td>long</td></tr>") == len(sent["trades"])
    assert "short entry" not in page and "H moved" not in page


def test_report_without_synthetic_oi_does_not_say_synthetic(run_cli, tmp_path, sample_run):
    from cryptobot.clock import LiveClock
    from cryptobot.store import SqlRecorder

    url = f"sqlite:///{tmp_path / 'real.sqlite'}"
    with SqlRecorder(url, clock=LiveClock()) as recorder:
        sample_run.record_sample_run(recorder, oi_synthetic=False)
    page = _write_report(run_cli, url, tmp_path / "report.html")
    assert "SYNTHETIC" not in page


def test_the_report_of_a_run_that_did_not_finish_says_so_and_marks_its_equity(tmp_path,
                                                                             sample_run):
    from cryptobot.clock import LiveClock
    from cryptobot.report.build import report_data
    from cryptobot.store import SqlRecorder, open_store

    url = f"sqlite:///{tmp_path / 'unfinished.sqlite'}"
    with SqlRecorder(url, clock=LiveClock()) as recorder:
        recorder.finish_run = lambda summary: None  # killed before it could store a summary
        sent = sample_run.record_sample_run(recorder)
    store = open_store(url)
    data = report_data(store, 1)
    store.close()
    rows = dict(data.summary_rows)
    pnl = sum(trade.pnl_usdt for trade, _ in sent["trades"])
    assert rows["Summary"] == "not stored (the run did not finish)"
    assert rows["Net PnL of the closed trades stored"] == f"{pnl:+,.2f} USDT"
    assert data.marked is not None and data.marked.marks == len(sent["candles"])
    start = sent["equity"][0][1]  # no summary: the first stored equity point is the start
    assert data.marked.points[-1][1] == pytest.approx(start + pnl)  # flat at the end
    assert "Max drawdown, open trades marked to market each candle" in rows


@pytest.mark.browser
def test_report_renders_in_headless_chromium(run_cli, stored, tmp_path, render_in_chromium):
    url, sent = stored
    report = tmp_path / "report.html"
    _write_report(run_cli, url, report)
    counter = render_in_chromium(report)
    trades = len(sent["trades"])
    assert sorted(counter.plot_ids) == sorted(
        ["summary-equity", *(f"trade-{n}" for n in range(1, trades + 1))]
    )
    assert counter.main_svgs >= 2 * (trades + 1)  # plotly draws two main-svg layers per figure
    assert counter.candlestick_layers >= trades
