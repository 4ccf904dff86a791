"""The report's run-wide figure: equity marked to market, its drawdown, and the macro gate's
timeline (ALLOW / REDUCE / BLOCK over time, each decision's reasons on hover)."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from cryptobot.report.build import ReportData
from cryptobot.report.charts import GateSpan
from cryptobot.report.html_parts import GATE_BAR_COLOURS, chart_time

GATE_ACTIONS = ("ALLOW", "REDUCE", "BLOCK")  # bottom to top
USDT_TICKS = ",.2~f"  # 9,994 or 9,994.5, never 9.994k


def summary_figure(data: ReportData) -> go.Figure:
    whose = "portfolio equity (all symbols)" if data.sections else "equity"
    if data.marked is not None:
        titles = (f"{whose.capitalize()}, USDT: marked to market at each candle close "
                  "(open trades' PnL counts); dotted: realised (closed trades)",
                  "Drawdown from the peak, % (open trades marked to market)")
    else:
        titles = (f"{whose.capitalize()}, USDT: realised (closed trades only, no candles stored)",
                  "Drawdown from the peak, % (realised)")
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.55, 0.22, 0.23],
                           vertical_spacing=0.07,
                           subplot_titles=(*titles, "Macro gate (hover a bar for its reasons)"))
    realised = go.Scatter(x=[chart_time(ts) for ts, _ in data.equity],
                          y=[v for _, v in data.equity], name="realised equity", line_shape="hv",
                          line={"color": "#7f7f7f", "dash": "dot"},
                          hovertemplate="%{y:,.2f} USDT realised<extra></extra>")
    if data.marked is not None:
        figure.add_trace(go.Scatter(
            x=[chart_time(ts) for ts, _ in data.marked.points],
            y=[v for _, v in data.marked.points], name="equity marked to market",
            line={"color": "#1f77b4"}, hovertemplate="%{y:,.2f} USDT<extra></extra>"),
            row=1, col=1)
    figure.add_trace(realised, row=1, col=1)
    figure.add_trace(go.Scatter(
        x=[chart_time(ts) for ts, _ in data.drawdown_pct],
        y=[v for _, v in data.drawdown_pct], name="drawdown",
        fill="tozeroy", line={"color": "#d62728"}, showlegend=False,
        hovertemplate="%{y:.2f}%<extra></extra>"), row=2, col=1)
    _add_gate_timeline(figure, data.gate_timeline, row=3)
    figure.update_layout(height=700, margin={"t": 50, "b": 30}, barmode="overlay",
                         legend={"orientation": "h", "y": -0.06})
    figure.update_yaxes(tickformat=USDT_TICKS, ticksuffix=" USDT", row=1, col=1)
    figure.update_yaxes(tickformat=".2~f", ticksuffix="%", row=2, col=1)
    figure.update_yaxes(type="category", categoryorder="array", categoryarray=GATE_ACTIONS,
                        range=[-0.5, len(GATE_ACTIONS) - 0.5], row=3, col=1)
    figure.update_xaxes(type="date")
    return figure


def _add_gate_timeline(figure: go.Figure, spans: list[GateSpan], row: int) -> None:
    """One bar per stored decision, from its time to the next one's (the run's end for the
    last), on the row of its action; one legend entry per action."""
    for action in GATE_ACTIONS:
        mine = [span for span in spans if span.action == action]
        if not mine:
            continue
        figure.add_trace(go.Bar(
            orientation="h",
            base=[chart_time(span.start_ms) for span in mine],
            x=[span.end_ms - span.start_ms for span in mine],
            y=[action] * len(mine),
            name=f"gate {action}",
            marker={"color": GATE_BAR_COLOURS[action], "line": {"width": 0}},
            hovertext=[_gate_hover(span) for span in mine],
            hovertemplate="%{hovertext}<extra></extra>",
        ), row=row, col=1)


def _gate_hover(span: GateSpan) -> str:
    reasons = span.reasons or (span.label,)
    return (f"<b>{html.escape(span.action)}</b> {chart_time(span.start_ms)} .. "
            f"{chart_time(span.end_ms)}<br>" + "<br>".join(html.escape(r) for r in reasons))

