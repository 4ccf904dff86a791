"""One trade's section of the HTML report: its figures and its chart (candles with the setup,
entry, exits, the stop as one stepped line and the targets; volume; open interest; the macro
gate's state shaded behind)."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cryptobot.model import PositionSide
from cryptobot.report.charts import TradeChart
from cryptobot.report.html_parts import GATE_COLOURS, PRICE_TICKS, chart_time, kv_table
from cryptobot.report.lines import gate_text

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
STOP_COLOUR = "#d62728"
TARGET_COLOUR = "#2ca02c"


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
        subplot_titles=("15m candles (USDT)", "Volume", oi_title),
    )
    times = [chart_time(c[0]) for c in chart.candles]
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
    _add_markers(figure, chart)
    _add_stop_and_targets(figure, chart)
    figure.add_trace(
        go.Bar(x=times, y=[c[5] for c in chart.candles], name="volume",
               marker={"color": "#7f7f7f"}, showlegend=False),
        row=2,
        col=1,
    )
    figure.add_trace(
        go.Scatter(x=[chart_time(ts) for ts, _ in chart.oi], y=[v for _, v in chart.oi],
                   name=oi_title, line={"color": "#9467bd"}, showlegend=False),
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
    figure.update_yaxes(tickformat=PRICE_TICKS, row=1, col=1)
    return figure


def _add_markers(figure: go.Figure, chart: TradeChart) -> None:
    """Entry, exit and setup markers on the price panel (a short's pointing the other way)."""
    for kind, (symbol, colour, name) in MARKER_STYLES.items():
        if chart.side is PositionSide.SHORT:
            symbol, name = SHORT_MARKERS.get(kind, (symbol, name))
        markers = [m for m in chart.markers if m.kind == kind]
        if markers:
            figure.add_trace(
                go.Scatter(
                    x=[chart_time(m.ts_ms) for m in markers],
                    y=[m.price for m in markers],
                    mode="markers",
                    name=name,
                    text=[m.label for m in markers],
                    hovertemplate="%{text}<extra></extra>",
                    marker={"symbol": symbol, "size": 12, "color": colour,
                            "line": {"width": 1, "color": "#333"}},
                ),
                row=1,
                col=1,
            )


def _add_stop_and_targets(figure: go.Figure, chart: TradeChart) -> None:
    """The stop as one stepped line (each move a step, one legend entry) and each target once
    (a short's stop above the entry and its targets below, as its orders placed them)."""
    steps = chart.stop_steps
    moves = len({price for _, price in steps}) - 1
    name = f"stop (trailed: {moves} move{'s' if moves != 1 else ''})" if moves else "stop"
    figure.add_trace(
        go.Scatter(
            x=[chart_time(ts) for ts, _ in steps],
            y=[price for _, price in steps],
            mode="lines",
            line_shape="hv",
            name=name,
            text=[f"stop {price:,.1f} from {chart_time(ts)}" for ts, price in steps[:-1]]
            + [f"stop {steps[-1][1]:,.1f} at the exit"],
            hovertemplate="%{text}<extra></extra>",
            line={"width": 1.8, "color": STOP_COLOUR},
        ),
        row=1,
        col=1,
    )
    for label, price, from_ms, to_ms in chart.levels:
        figure.add_trace(
            go.Scatter(
                x=[chart_time(from_ms), chart_time(to_ms)],
                y=[price, price],
                mode="lines",
                name=f"{label} {price:,.1f}",
                line={"dash": "dash", "width": 1.5, "color": TARGET_COLOUR},
            ),
            row=1,
            col=1,
        )


def _add_gate_shading(figure: go.Figure, chart: TradeChart) -> None:
    """The macro gate's state behind the whole chart (each span a rectangle behind each of the
    three panels, as `add_vrect` draws them; given in one go, which is ~50x cheaper than a
    call per span), with a caption naming the states."""
    shapes = [{"type": "rect", "layer": "below", "line": {"width": 0},
               "fillcolor": GATE_COLOURS.get(span.action, "rgba(0,0,0,0.05)"),
               "x0": chart_time(span.start_ms), "x1": chart_time(span.end_ms),
               "xref": f"x{panel}", "yref": f"y{panel} domain", "y0": 0, "y1": 1}
              for span in chart.gate_spans for panel in ("", "2", "3")]
    figure.update_layout(shapes=shapes)
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


def trade_section(chart: TradeChart, oi_synthetic: bool) -> str:
    trade = chart.line.trade
    base = trade.symbol.split("/")[0]
    rows = [
        ("side", str(chart.side)),
        ("entry", f"{chart_time(trade.entry_ms)} at {trade.entry_price:,.2f} USDT"),
        ("exit", f"{chart_time(trade.exit_ms)} at {trade.exit_price:,.2f} USDT "
                 f"({trade.exit_reason.replace('_', ' ')})"),
        ("size", f"{trade.qty_base:g} {base}"),
        ("initial stop", f"{trade.initial_stop:,.2f} USDT"),
        ("PnL", f"{trade.pnl_usdt:+,.2f} USDT ({trade.r_multiple:+.2f} R), after fees "
                f"{trade.fees_usdt:,.2f} USDT and funding {trade.funding_usdt:,.2f} USDT"),
        ("gate at entry", gate_text(chart.line.gate)),
    ]
    figure = trade_figure(chart, oi_synthetic)
    div = figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"trade-{chart.number}")
    return (f"<section class='trade'><h3>Trade {chart.number}: {html.escape(trade.symbol)}</h3>"
            f"{kv_table(rows)}{div}</section>")
