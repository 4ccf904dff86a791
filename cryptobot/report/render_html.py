"""One self-contained HTML file: plotly.js inlined once, no network needed to open it."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cryptobot.report.build import ReportData
from cryptobot.report.charts import TradeChart
from cryptobot.report.html_parts import PRICE_TICKS, chart_time, kv_table
from cryptobot.report.render_summary import summary_figure
from cryptobot.report.render_trade import trade_section
from cryptobot.report.signal_table import SignalRow, SignalTable
from cryptobot.report.symbol_sections import PriceChart, SymbolSection

OVERVIEW_MARKERS = {  # kind: (symbol, colour, name in the legend), on a symbol's whole-run chart
    "entry": ("triangle-up", "#1f77b4", "long entry"),
    "short_entry": ("triangle-down", "#1f77b4", "short entry"),
    "exit": ("diamond", "#ff7f0e", "exit"),
}


def signals_table(table: SignalTable) -> str:
    """One row per signal, its numbers and evidence as columns; the macro gate in full in a row
    of its own each time it changes, and its short form (REDUCE x0.5) on each signal's row."""
    headings = ["spike (UTC)", *(["symbol"] if table.show_symbol else []), "what happened",
                *table.number_columns, *(f"evidence: {name}" for name in table.evidence_columns),
                "gate"]
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headings) + "</tr>"
    body = []
    for row in table.rows:
        if row.gate_change is not None:
            body.append(_gate_change_row(row, len(headings)))
        body.append(_signal_row(row, table.show_symbol))
    return f"<table class='grid signals'>{head}{''.join(body)}</table>"


def _gate_change_row(row: SignalRow, columns: int) -> str:
    change = row.gate_change
    assert change is not None
    reasons = "".join(f"<li>{html.escape(reason)}</li>" for reason in change.reasons)
    return (f"<tr class='gate-change'><td colspan='{columns}'>macro gate from "
            f"{html.escape(change.time)}: <b>{html.escape(change.headline)}</b>"
            f"{f'<ul>{reasons}</ul>' if reasons else ''}</td></tr>")


def _signal_row(row: SignalRow, show_symbol: bool) -> str:
    cells = [f"<td>{html.escape(row.time.replace('T', ' ').removesuffix('Z'))}</td>"]
    if show_symbol:
        cells.append(f"<td>{html.escape(row.symbol)}</td>")
    cells.append(f"<td title='{html.escape(row.all_numbers, quote=True)}'>"
                 f"{html.escape(row.outcome)}</td>")
    cells += [f"<td class='num'>{html.escape(value)}</td>" for value in row.numbers]
    cells += [f"<td class='evidence' title='{html.escape(cell.detail, quote=True)}'>"
              f"{html.escape(f'{cell.mark} {cell.value}'.strip())}</td>" for cell in row.evidence]
    cells.append(f"<td>{html.escape(row.gate)}</td>")
    return f"<tr class='{'entered' if row.entered else 'rejected'}'>{''.join(cells)}</tr>"


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 16px}
th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}
.kv th{background:#f4f4f4}.grid th{background:#f4f4f4}
.synthetic{background:#fff3cd;padding:6px 10px;border:1px solid #e0c060}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.entered td{background:#eef6ff}
tr.gate-change td{background:#fbf7ea;font-size:12px;color:#444}
tr.gate-change ul{margin:2px 0 2px 18px;padding:0}
"""


def price_figure(symbol: str, chart: PriceChart, oi_synthetic: bool) -> go.Figure:
    """A symbol's price over the whole run, its trades' entries and exits, and its OI if any."""
    rows = 2 if chart.oi else 1
    titles = [f"{symbol}: {chart.title}"]
    if chart.oi:
        titles.append("Open interest (SYNTHETIC)" if oi_synthetic else "Open interest")
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                           row_heights=[0.75, 0.25] if chart.oi else [1.0],
                           subplot_titles=titles)
    figure.add_trace(go.Candlestick(
        x=[chart_time(c[0]) for c in chart.candles], open=[c[1] for c in chart.candles],
        high=[c[2] for c in chart.candles], low=[c[3] for c in chart.candles],
        close=[c[4] for c in chart.candles], name=symbol), row=1, col=1)
    for kind, (marker, colour, name) in OVERVIEW_MARKERS.items():
        markers = [m for m in chart.markers if m.kind == kind]
        if markers:
            figure.add_trace(go.Scatter(
                x=[chart_time(m.ts_ms) for m in markers], y=[m.price for m in markers],
                mode="markers",
                name=name, text=[m.label for m in markers], hovertemplate="%{text}<extra></extra>",
                marker={"symbol": marker, "size": 11, "color": colour,
                        "line": {"width": 1, "color": "#333"}}), row=1, col=1)
    if chart.oi:
        figure.add_trace(go.Scatter(
            x=[chart_time(ts) for ts, _ in chart.oi], y=[v for _, v in chart.oi], name=titles[1],
            line={"color": "#9467bd"}, showlegend=False), row=2, col=1)
    figure.update_yaxes(tickformat=PRICE_TICKS, row=1, col=1)
    figure.update_layout(height=560 if chart.oi else 440, margin={"t": 50, "b": 30},
                         xaxis_rangeslider_visible=False, legend={"orientation": "h", "y": -0.1})
    return figure


def _trades_html(charts: list[TradeChart], oi_synthetic: bool, empty: str) -> str:
    return "".join(trade_section(chart, oi_synthetic) for chart in charts) or f"<p>{empty}</p>"


def _symbol_section(section: SymbolSection, oi_synthetic: bool) -> str:
    price = price_figure(section.symbol, section.price, oi_synthetic).to_html(
        full_html=False, include_plotlyjs=False, div_id=f"price-{section.anchor}")
    name = html.escape(section.symbol)
    return (
        f"<section class='symbol' id='symbol-{section.anchor}'><h2>{name}</h2>"
        f"{kv_table(section.figure_rows)}{price}"
        f"<h3>Signals of {name} ({len(section.signals)})</h3>{signals_table(section.signal_table)}"
        f"<h3>Trades of {name} ({len(section.trades)})</h3>"
        f"{_trades_html(section.trades, oi_synthetic, f'No trades of {name} in this run.')}"
        "</section>"
    )


def report_html(data: ReportData) -> str:
    """The whole report page (plotly.js inlined in the first figure). A run of several symbols:
    the portfolio (summary, equity and drawdown), then a section per symbol."""
    summary = summary_figure(data).to_html(
        full_html=False, include_plotlyjs=True, div_id="summary-equity"
    )
    notice = (
        "<p class='synthetic'>Open interest in this run is SYNTHETIC (hand-built, "
        "labelled in the data source); the OI panes show it as such.</p>"
        if data.oi_synthetic
        else ""
    )
    head = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(data.title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(data.title)}</h1>{notice}<h2>Run</h2>{kv_table(data.run_rows)}"
    )
    if data.sections or data.signal_table is None:
        sections = "".join(_symbol_section(s, data.oi_synthetic) for s in data.sections)
        return (
            f"{head}<h2>Portfolio</h2>{kv_table(data.summary_rows)}"
            f"<h2>Portfolio equity, drawdown and the macro gate</h2>{summary}{sections}"
            "</body></html>"
        )
    table = data.signal_table
    return (
        f"{head}<h2>Summary</h2>{kv_table(data.summary_rows)}"
        f"<h2>Equity, drawdown and the macro gate</h2>{summary}"
        f"<h2>Signals ({len(data.signals)})</h2>{signals_table(table)}"
        f"<h2>Trades ({len(data.trades)})</h2>"
        f"{_trades_html(data.trades, data.oi_synthetic, 'No trades in this run.')}"
        "</body></html>"
    )
