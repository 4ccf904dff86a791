"""What the HTML report's renderers share: chart times, a key/value table, the gate's colours."""

from __future__ import annotations

import html
from datetime import UTC, datetime

GATE_COLOURS = {  # the macro gate's actions: shading behind a trade's chart
    "ALLOW": "rgba(46,160,67,0.10)",
    "REDUCE": "rgba(230,160,0,0.14)",
    "BLOCK": "rgba(220,40,40,0.14)",
}
GATE_BAR_COLOURS = {"ALLOW": "#2ea043", "REDUCE": "#e6a000", "BLOCK": "#dc2828"}  # the timeline
PRICE_TICKS = ",.6~g"  # 52,131.5, not 52.1315k


def chart_time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def kv_table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='kv'>{body}</table>"
