"""The HTML report's parts on tiny hand-checkable inputs: the summary in words, equity marked to
market, the trailing stop as one stepped line, and the signals table (numbers and evidence as
columns, the gate once per change)."""

from __future__ import annotations

import re

import pytest

from cryptobot.engine.recorder import OrderEvent
from cryptobot.model import (
    Candle,
    Fill,
    GateAction,
    GateDecision,
    OrderIntent,
    OrderPurpose,
    OrderType,
    Side,
    Trade,
    TradeLeg,
)
from cryptobot.report.charts import stop_steps, target_levels
from cryptobot.report.figure_words import figure_rows
from cryptobot.report.lines import TradeLine
from cryptobot.report.marked_equity import marked_equity
from cryptobot.report.render_html import signals_table
from cryptobot.report.signal_table import table_of

MIN = 60_000
T0 = 1_722_816_000_000  # 2024-08-05T00:00Z
SYMBOL = "BTC/USDT:USDT"


def _candle(i: int, close: float, symbol: str = SYMBOL) -> Candle:
    return Candle(T0 + i * 15 * MIN, 15 * MIN, close, close, close, close, 1.0, symbol)


def _fill(ts_ms: int, side: Side, price: float, qty: float, purpose: OrderPurpose) -> Fill:
    return Fill(f"s-{purpose}", SYMBOL, ts_ms, side, price, qty, 0.5, False, purpose)


def _long_trade() -> Trade:
    """Bought 2 at 100 in candle 1; closes 96 then 90 (open loss 20 + fee), out at 110."""
    return Trade("s", SYMBOL, Side.BUY, T0 + 20 * MIN, 100.0, 2.0, 85.0,
                 (TradeLeg(T0 + 65 * MIN, 110.0, 2.0, 0.5, "trailing_stop"),), 0.5, 1.0)


def test_equity_marked_to_market_counts_an_open_loss_that_realised_equity_never_shows():
    trade = _long_trade()
    candles = [_candle(i, c) for i, c in enumerate([100.0, 96.0, 90.0, 104.0, 111.0])]
    fills = [_fill(trade.entry_ms, Side.BUY, 100.0, 2.0, OrderPurpose.ENTRY),
             _fill(trade.exit_ms, Side.SELL, 110.0, 2.0, OrderPurpose.STOP)]
    marked = marked_equity(1000.0, candles, fills, [trade])
    assert marked is not None and marked.marks == 5
    values = [value for _, value in marked.points]
    # closes: before the entry; 2 x (96-100) - fee; 2 x (90-100) - fee; 2 x (104-100) - fee;
    # out at 110 with both fees and the trade's funding paid
    assert values == pytest.approx([1000.0, 991.5, 979.5, 1007.5, 1018.0])
    assert values[-1] == pytest.approx(1000.0 + trade.pnl_usdt)
    assert marked.max_drawdown_usdt == pytest.approx(20.5)  # realised equity never fell
    assert marked.max_drawdown_pct == pytest.approx(2.05)
    assert [ts for ts, _ in marked.points] == [c.ts_close_ms for c in candles]
    # a closed trade's cash is the trade's own ledger, whatever fills were stored of it
    assert marked_equity(1000.0, candles, fills[:1], [trade]) == marked


def test_a_short_gains_as_price_falls_and_symbols_are_marked_apart():
    short = Fill("e-entry", "ETH/USDT:USDT", T0, Side.SELL, 50.0, 10.0, 0.0, False,
                 OrderPurpose.ENTRY)
    candles = [_candle(0, 100.0), _candle(0, 45.0, "ETH/USDT:USDT"),
               _candle(1, 120.0), _candle(1, 55.0, "ETH/USDT:USDT")]
    marked = marked_equity(1000.0, candles, [short], [])
    assert marked is not None
    assert [value for _, value in marked.points] == pytest.approx([1050.0, 950.0])
    assert marked.max_drawdown_usdt == pytest.approx(100.0)


def test_the_summary_reads_as_words_with_units():
    figures = {"trades": 2, "wins": 1, "win_rate_pct": 50.0, "total_pnl_usdt": -2.27,
               "total_pnl_pct": -0.0227, "max_drawdown_usdt": 6.26, "max_drawdown_pct": 0.0626,
               "profit_factor": None, "average_r": -0.158, "exposure_pct": 2.27,
               "funding_charged": True, "funding_note": "charged every 8h",
               "starting_equity_usdt": 10_000.0, "signals": 16, "signals_entered": 2,
               "exit_reasons": {"stop": 1, "trailing_stop": 1}, "oi_samples": 8353,
               "oi_synthetic": True, "open_position_at_end": False, "open_position": None,
               "slippage_bps_usdt": 1.5}
    rows = dict(figure_rows(figures))
    assert rows == {
        "Trades": "2",
        "Win rate": "50.00% (1 of 2 trades won)",
        "Net PnL (after fees and funding)": "-2.27 USDT (-0.02% of starting equity)",
        "Max drawdown, closed trades only": "6.26 USDT (0.06%)",
        "Profit factor (gross wins / gross losses)": "- (no losing trade)",
        "Average trade in R (multiples of its initial risk)": "-0.16 R",
        "Time in a position": "2.27% of the run",
        "Funding": "charged every 8h",
        "Starting equity": "10,000.00 USDT",
        "Signals": "16 (2 entered)",
        "Exits, by reason": "stop: 1, trailing stop: 1",
        "Open interest samples": "8,353 (SYNTHETIC, hand-built)",
        "Position at the end": "flat",
        "Slippage bps": "1.50 USDT",  # a figure without words still says its unit
    }
    assert all(label[0].isupper() and "_" not in label for label in rows)


def test_an_open_position_at_the_end_is_described():
    held = {"side": "long", "qty": 0.002, "entry_time": "2024-08-05T07:00:00Z",
            "entry_price": 51_587.78, "stop_price": 52_000.0, "last_price": 53_000.0,
            "unrealised_pnl_usdt": 2.82}
    rows = dict(figure_rows({"open_position_at_end": True, "open_position": held}))
    assert rows["Position at the end"] == (
        "long 0.002 from 2024-08-05T07:00:00Z at 51,587.78, stop 52,000.00; "
        "unrealised +2.82 USDT at 53,000.00")


def _stop(ts_ms: int, price: float, n: int, status: str = "open") -> OrderEvent:
    intent = OrderIntent(f"s-stop{n}", SYMBOL, Side.SELL, OrderType.STOP_MARKET, 2.0,
                         OrderPurpose.STOP, price=price, reduce_only=True)
    return OrderEvent(ts_ms, intent, status)


def test_a_trailing_stop_is_one_stepped_line_and_each_target_is_drawn_once():
    trade = _long_trade()
    line = TradeLine.of(trade, None)
    tp = OrderIntent("s-tp1", SYMBOL, Side.SELL, OrderType.LIMIT, 1.0, OrderPurpose.TP1,
                     price=120.0, reduce_only=True)
    entry = OrderIntent("s-entry", SYMBOL, Side.BUY, OrderType.LIMIT, 2.0, OrderPurpose.ENTRY,
                        price=100.5, stop_price=85.0)
    orders = [OrderEvent(trade.entry_ms, entry, "open"),
              _stop(trade.entry_ms, 85.0, 1), OrderEvent(trade.entry_ms, tp, "open"),
              _stop(T0 + 30 * MIN, 85.0, 2),  # re-placed at the same price: no step
              _stop(T0 + 45 * MIN, 92.0, 3), OrderEvent(T0 + 45 * MIN, tp, "open"),
              _stop(T0 + 50 * MIN, 99.0, 4), _stop(T0 + 50 * MIN, 92.0, 3, "canceled")]
    assert stop_steps(line, orders) == [(trade.entry_ms, 85.0), (T0 + 45 * MIN, 92.0),
                                        (T0 + 50 * MIN, 99.0), (trade.exit_ms, 99.0)]
    assert target_levels(line, orders) == [("tp1", 120.0, trade.entry_ms, trade.exit_ms)]
    filled = [*orders, OrderEvent(T0 + 55 * MIN, tp, "filled")]
    assert target_levels(line, filled) == [("tp1", 120.0, trade.entry_ms, T0 + 55 * MIN)]


def _gate(ts_ms: int, action: GateAction, factor: float, *reasons: str) -> GateDecision:
    return GateDecision(ts_ms, action, factor, reasons, {})


def _signal(minutes: int, status: str, **numbers) -> dict:
    time = f"2024-08-05T{minutes // 60:02d}:{minutes % 60:02d}:00Z"
    return {"signal_id": f"s{minutes}", "symbol": SYMBOL, "time": time, "decided_time": time,
            "status": status, "reason": "", "setup_events": [], **numbers}


def test_the_signals_table_has_numbers_and_evidence_as_columns_and_the_gate_once_per_change():
    reduce_a = _gate(T0, GateAction.REDUCE, 0.5, "REDUCE (size x0.5): QT active",
                     "HYG trend up: close 71.12 on 2024-08-02")
    reduce_b = _gate(T0 + 60 * MIN, GateAction.REDUCE, 0.5, "REDUCE (size x0.5): QT active",
                     "HYG trend up: close 71.40 on 2024-08-05")  # the day's numbers: no change
    block = _gate(T0 + 120 * MIN, GateAction.BLOCK, 0.0, "BLOCK: QT active; HYG down")
    evidence = [
        {"name": "open_interest", "value": -3.19, "holds": True, "detail": "OI fell 3.19%"},
        {"name": "liquidations", "value": None, "holds": None, "detail": "no data for 08-05"},
        {"name": "funding_flushed", "value": 0.0001, "holds": False, "detail": "still positive"},
    ]
    old = _signal(30, "rejected", body_atr=1.66, volume_ratio=7.23, drop_from_high_pct=5.14,
                  oi_change_pct=None, capped=0.0)  # stored before evidence: no key
    entered = _signal(90, "entered", body_atr=3.96, volume_ratio=32.04, drop_from_high_pct=11.73,
                      oi_change_pct=-3.19, atr=561.3, stop_price=52_130.99, qty_base=0.002,
                      risk_usdt=50.07, capped=0.0, evidence=evidence)
    blocked = _signal(150, "rejected", body_atr=2.0, volume_ratio=5.0, drop_from_high_pct=6.0,
                      oi_change_pct=-2.0, evidence=evidence[:1])
    table = table_of([(old, reduce_a, "rejected: open interest not measured"),
                      (entered, reduce_b, "entered"),
                      (blocked, block, "rejected: gate BLOCK: QT active; HYG down")])
    assert table.number_columns == ["spike body / ATR", "volume / average", "drop from high %",
                                    "OI change %", "ATR", "stop", "size", "risk USDT"]
    assert table.evidence_columns == ["open interest", "liquidations", "funding flushed"]
    old_row, entered_row, blocked_row = table.rows
    assert old_row.numbers == ["1.66", "7.23", "5.14", "", "", "", "", ""]
    assert entered_row.numbers == ["3.96", "32.04", "11.73", "-3.19", "561.3", "52,131.0",
                                   "0.002", "50.07"]
    assert [(c.mark, c.value) for c in entered_row.evidence] == [
        ("✔", "-3.19%"), ("?", ""), ("✘", "+0.0100%")]
    assert [c.mark for c in old_row.evidence] == ["", "", ""]  # not measured then
    assert [c.mark for c in blocked_row.evidence] == ["✔", "", ""]
    assert [row.gate_change is not None for row in table.rows] == [True, False, True]
    assert old_row.gate_change.reasons == reduce_a.reasons
    assert [row.gate for row in table.rows] == ["REDUCE x0.5", "REDUCE x0.5", "BLOCK"]

    page = signals_table(table)
    assert "None" not in page and "=" not in re.sub(r"<[^>]*>", "", page)
    assert page.count("HYG trend up") == 1  # the gate's reasons once, at its change
    assert page.count("<tr class='gate-change'>") == 2
    assert "<th>evidence: liquidations</th>" in page
    assert "title='no data for 08-05'>?</td>" in page


def test_a_table_of_runs_before_evidence_has_no_evidence_columns():
    table = table_of([(_signal(30, "rejected", body_atr=1.5), None, "rejected: x")])
    assert table.evidence_columns == [] and table.rows[0].evidence == []
    assert table.rows[0].gate_change is not None and table.rows[0].gate == "-"
    assert "evidence" not in signals_table(table)


def test_a_paper_runs_end_reads_as_a_time_and_says_the_position_once():
    """A stream run's summary adds when it stopped (a time, not "1724112000000 ms"), why it
    stopped early (no row when it did not) and its position in words."""
    figures = {"trades": 0, "wins": 0, "profit_factor": None, "open_position_at_end": False,
               "open_position": None, "open_position_detail": "flat",
               "stopped_ms": 1_724_112_000_000, "stopped_early": None,
               "last_candle_ms": 1_724_111_700_000}
    rows = figure_rows(figures)
    assert rows == [("Trades", "0"),
                    ("Profit factor (gross wins / gross losses)",
                     "- (no winning or losing trade)"),
                    ("Position at the end", "flat"),
                    ("Stopped at", "2024-08-20T00:00:00Z"),
                    ("Last candle", "2024-08-19T23:55:00Z")]
    stopped = dict(figure_rows({**figures, "stopped_early": "kill switch"}))
    assert stopped["Stopped early, by"] == "kill switch"
    held = dict(figure_rows({**figures, "open_position_at_end": True,
                             "open_position_detail": "long 0.002000 @ 51,587.78"}))
    assert held["Position at the end"] == "long 0.002000 @ 51,587.78"


def test_evidence_reads_in_its_units_as_in_cryptobot_signals():
    from cryptobot.report.signal_table import table_of

    evidence = [{"name": "open_interest", "holds": False, "value": 0.3261, "detail": "d"},
                {"name": "liquidations", "holds": True, "value": 3.25, "detail": "d"},
                {"name": "funding_flushed", "holds": True, "value": -8.488e-05, "detail": "d"},
                {"name": "repo_calm", "holds": True, "value": None, "detail": "d"}]
    (row,) = table_of([(_signal(105, "rejected", evidence=evidence), None, "rejected")]).rows
    assert [f"{cell.mark} {cell.value}".strip() for cell in row.evidence] == [
        "✘ +0.33%", "✔ 3.2x", "✔ -0.0085%", "✔"]
