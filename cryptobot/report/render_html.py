"""One self-contained HTML file: plotly.js inlined once, no network needed to open it."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cryptobot.model import PositionSide
from cryptobot.report.build import ReportData
from cryptobot.report.charts import TradeChart
from cryptobot.report.lines import SignalLine, gate_text
from cryptobot.report.symbol_sections import PriceChart, SymbolSection

GATE_COLOURS = {
    "ALLOW": "rgba(46,160,67,0.10)",
    "REDUCE": "rgba(230,160,0,0.14)",
    "BLOCK": "rgba(220,40,40,0.14)",
}
MARKER_STYLES = {  # kind: (symbol, colour, name in the legend), as for a long
    "spike": ("triangle-down", "#d62728", "spike candle"),
    "new_low": ("x", "#9467bd", "L moved (new low)"),
    "new_high": ("x", "#9467bd", "H moved (new high)"),
    "candidate": ("circle-open", "#8c564b", "pullback candidate"),
    "confirmed": ("star", "#17becf", "confirming candle"),
    "expired": ("x-thin", "#7f7f7f", "setup expired"),
    "entry": ("triangle-up", "#1f77b4", "entry"),
    "exit": ("diamond", "#ff7f0e", "exit"),
    "rejected": ("circle-x", "#bcbd22", "rejected signal"),
}
# A short's spike points up (a squeeze) and its entry sells: the markers point the other way.
SHORT_MARKERS = {  # kind: (symbol, name in the legend)
    "spike": ("triangle-up", "spike candle"),
    "entry": ("triangle-down", "short entry"),
}
LEVEL_COLOURS = {"stop": "#d62728", "tp1": "#2ca02c", "tp2": "#2ca02c"}
OVERVIEW_MARKERS = {  # kind: (symbol, colour, name in the legend), on a symbol's whole-run chart
    "entry": ("triangle-up", "#1f77b4", "long entry"),
    "short_entry": ("triangle-down", "#1f77b4", "short entry"),
    "exit": ("diamond", "#ff7f0e", "exit"),
}


def _t(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{body}</table>"


def summary_figure(data: ReportData) -> go.Figure:
    equity_title = "Portfolio equity (USDT, all symbols)" if data.sections else "Equity (USDT)"
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.05,
        subplot_titles=(equity_title, "Drawdown (%)"),
    )
    times = [_t(ts) for ts, _ in data.equity]
    figure.add_trace(
        go.Scatter(
            x=times, y=[v for _, v in data.equity], name="equity", line={"color": "#1f77b4"}
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=[_t(ts) for ts, _ in data.drawdown_pct],
            y=[v for _, v in data.drawdown_pct],
            name="drawdown",
            fill="tozeroy",
            line={"color": "#d62728"},
        ),
        row=2,
        col=1,
    )
    figure.update_layout(height=520, margin={"t": 40, "b": 30}, showlegend=False)
    return figure


def trade_figure(chart: TradeChart, oi_synthetic: bool) -> go.Figure:
    oi_title = "Open interest (SYNTHETIC)" if oi_synthetic else "Open interest"
    if not chart.oi:  # e.g. a symbol of a several-symbol run whose OI was not recorded
        oi_title = "Open interest (none recorded)"
    figure = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.62, 0.19, 0.19],
        vertical_spacing=0.03,
        subplot_titles=("15m candles", "Volume", oi_title),
    )
    times = [_t(c[0]) for c in chart.candles]
    figure.add_trace(
        go.Candlestick(
            x=times,
            open=[c[1] for c in chart.candles],
            high=[c[2] for c in chart.candles],
            low=[c[3] for c in chart.candles],
            close=[c[4] for c in chart.candles],
            name="15m",
        ),
        row=1,
        col=1,
    )
    _add_markers_and_levels(figure, chart)
    figure.add_trace(
        go.Bar(
            x=times,
            y=[c[5] for c in chart.candles],
            name="volume",
            marker={"color": "#7f7f7f"},
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=[_t(ts) for ts, _ in chart.oi],
            y=[v for _, v in chart.oi],
            name=oi_title,
            line={"color": "#9467bd"},
            showlegend=False,
        ),
        row=3,
        col=1,
    )
    _add_gate_shading(figure, chart)
    figure.update_layout(
        height=720,
        margin={"t": 60, "b": 30},
        xaxis_rangeslider_visible=False,
        legend={"orientation": "h", "y": -0.08},
    )
    return figure


def _add_markers_and_levels(figure: go.Figure, chart: TradeChart) -> None:
    """Entry, exit and setup markers, and the stop and target levels, on the price panel (a
    short's stop above the entry and its targets below, as its orders placed them)."""
    for kind, (symbol, colour, name) in MARKER_STYLES.items():
        if chart.side is PositionSide.SHORT:
            symbol, name = SHORT_MARKERS.get(kind, (symbol, name))
        markers = [m for m in chart.markers if m.kind == kind]
        if markers:
            figure.add_trace(
                go.Scatter(
                    x=[_t(m.ts_ms) for m in markers],
                    y=[m.price for m in markers],
                    mode="markers",
                    name=name,
                    text=[m.label for m in markers],
                    hovertemplate="%{text}<extra></extra>",
                    marker={
                        "symbol": symbol,
                        "size": 12,
                        "color": colour,
                        "line": {"width": 1, "color": "#333"},
                    },
                ),
                row=1,
                col=1,
            )
    for label, price, from_ms, to_ms in chart.levels:
        figure.add_trace(
            go.Scatter(
                x=[_t(from_ms), _t(to_ms)],
                y=[price, price],
                mode="lines",
                name=f"{label} {price:,.1f}",
                line={"dash": "dash", "width": 1.5, "color": LEVEL_COLOURS.get(label, "#555")},
            ),
            row=1,
            col=1,
        )


def _add_gate_shading(figure: go.Figure, chart: TradeChart) -> None:
    """The macro gate's state behind the whole chart, with a caption naming the states."""
    for span in chart.gate_spans:
        figure.add_vrect(
            x0=_t(span.start_ms),
            x1=_t(span.end_ms),
            layer="below",
            line_width=0,
            fillcolor=GATE_COLOURS.get(span.action, "rgba(0,0,0,0.05)"),
        )
    if chart.gate_spans:
        figure.add_annotation(
            xref="paper",
            yref="paper",
            x=0,
            y=1.08,
            showarrow=False,
            align="left",
            text="shading: macro gate state ("
            + ", ".join(sorted({s.action for s in chart.gate_spans}))
            + ")",
        )


def _signals_table(signals: list[SignalLine]) -> str:
    head = "<tr><th>spike</th><th>what happened</th><th>numbers</th><th>gate</th></tr>"
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            _t(line.signal.spike_ms),
            html.escape(line.outcome),
            html.escape(
                ", ".join(
                    f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in line.signal.metrics.items()
                )
            ),
            html.escape(gate_text(line.gate)),
        )
        for line in signals
    )
    return f"<table class='grid'>{head}{rows}</table>"


def _trade_section(chart: TradeChart, oi_synthetic: bool) -> str:
    trade = chart.line.trade
    rows = [
        ("side", str(chart.side)),
        ("entry", f"{_t(trade.entry_ms)} at {trade.entry_price:,.2f}"),
        ("exit", f"{_t(trade.exit_ms)} at {trade.exit_price:,.2f} ({trade.exit_reason})"),
        ("size", f"{trade.qty_base:g}"),
        ("initial stop", f"{trade.initial_stop:,.2f}"),
        (
            "PnL",
            f"{trade.pnl_usdt:,.2f} USDT ({trade.r_multiple:+.2f} R), fees {trade.fees_usdt:,.2f}",
        ),
        ("gate at entry", gate_text(chart.line.gate)),
    ]
    figure = trade_figure(chart, oi_synthetic)
    div = figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"trade-{chart.number}")
    return f"<section class='trade'><h3>Trade {chart.number}</h3>{_table(rows)}{div}</section>"


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 16px}
th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}
.kv th{background:#f4f4f4}.grid th{background:#f4f4f4}
.synthetic{background:#fff3cd;padding:6px 10px;border:1px solid #e0c060}
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
        x=[_t(c[0]) for c in chart.candles], open=[c[1] for c in chart.candles],
        high=[c[2] for c in chart.candles], low=[c[3] for c in chart.candles],
        close=[c[4] for c in chart.candles], name=symbol), row=1, col=1)
    for kind, (marker, colour, name) in OVERVIEW_MARKERS.items():
        markers = [m for m in chart.markers if m.kind == kind]
        if markers:
            figure.add_trace(go.Scatter(
                x=[_t(m.ts_ms) for m in markers], y=[m.price for m in markers], mode="markers",
                name=name, text=[m.label for m in markers], hovertemplate="%{text}<extra></extra>",
                marker={"symbol": marker, "size": 11, "color": colour,
                        "line": {"width": 1, "color": "#333"}}), row=1, col=1)
    if chart.oi:
        figure.add_trace(go.Scatter(
            x=[_t(ts) for ts, _ in chart.oi], y=[v for _, v in chart.oi], name=titles[1],
            line={"color": "#9467bd"}, showlegend=False), row=2, col=1)
    figure.update_layout(height=560 if chart.oi else 440, margin={"t": 50, "b": 30},
                         xaxis_rangeslider_visible=False, legend={"orientation": "h", "y": -0.1})
    return figure


def _trades_html(charts: list[TradeChart], oi_synthetic: bool, empty: str) -> str:
    return "".join(_trade_section(chart, oi_synthetic) for chart in charts) or f"<p>{empty}</p>"


def _symbol_section(section: SymbolSection, oi_synthetic: bool) -> str:
    price = price_figure(section.symbol, section.price, oi_synthetic).to_html(
        full_html=False, include_plotlyjs=False, div_id=f"price-{section.anchor}")
    name = html.escape(section.symbol)
    return (
        f"<section class='symbol' id='symbol-{section.anchor}'><h2>{name}</h2>"
        f"{_table(section.figure_rows)}{price}"
        f"<h3>Signals of {name} ({len(section.signals)})</h3>{_signals_table(section.signals)}"
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
        f"<h1>{html.escape(data.title)}</h1>{notice}<h2>Run</h2>{_table(data.run_rows)}"
    )
    if data.sections:
        sections = "".join(_symbol_section(s, data.oi_synthetic) for s in data.sections)
        return (
            f"{head}<h2>Portfolio</h2>{_table(data.summary_rows)}"
            f"<h2>Portfolio equity and drawdown</h2>{summary}{sections}</body></html>"
        )
    return (
        f"{head}<h2>Summary</h2>{_table(data.summary_rows)}<h2>Equity and drawdown</h2>{summary}"
        f"<h2>Signals ({len(data.signals)})</h2>{_signals_table(data.signals)}"
        f"<h2>Trades ({len(data.trades)})</h2>"
        f"{_trades_html(data.trades, data.oi_synthetic, 'No trades in this run.')}"
        "</body></html>"
    )
