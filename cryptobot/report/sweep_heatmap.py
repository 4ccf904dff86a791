"""A sweep's heatmap: one summary figure over two of its grid keys, as one self-contained HTML
file (plotly.js inlined). `heatmap_cells` is the plain data; `write_heatmap` renders it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptobot.errors import ConfigError
from cryptobot.store.sweeps import SweepInfo, SweepResult
from cryptobot.sweep.metrics import LOWER_IS_BETTER, LOWER_IS_BETTER_MORE

# Figures whose sign says gain or loss: their colour turns from red to green at zero.
SIGNED_METRICS = frozenset({"total_pnl_usdt", "total_pnl_pct", "average_r"})


@dataclass(frozen=True)
class HeatmapCells:
    x_key: str
    y_key: str
    metric: str
    x_values: list[Any]
    y_values: list[Any]
    z: list[list[float | None]]  # z[row of y][column of x]; None: no combination ran there
    best_of_others: bool  # the grid has more keys: each cell is the best over them
    synthetic: bool


def heatmap_cells(info: SweepInfo, results: list[SweepResult], axes: str,
                  metric: str) -> HeatmapCells:
    """Each (x, y) cell: `metric` of that combination (the best of them when other keys vary;
    failed combinations leave a hole)."""
    if info.walk_forward:
        raise ConfigError(f"sweep {info.sweep_id} is a walk-forward: its windows have no "
                          "heatmap (show its table with `cryptobot sweeps ID`)")
    grid: dict[str, list[Any]] = info.grid.get("grid", {})
    keys = [key.strip() for key in axes.split(",")]
    if len(keys) != 2 or keys[0] == keys[1]:
        raise ConfigError(f"--heatmap {axes!r}: expected two different grid keys X,Y")
    for key in keys:
        if key not in grid:
            raise ConfigError(f"--heatmap: {key!r} is not a key of sweep {info.sweep_id}'s grid "
                              f"({', '.join(grid)})")
    x_key, y_key = keys
    lower = metric in LOWER_IS_BETTER or metric in LOWER_IS_BETTER_MORE
    cells: dict[tuple[int, int], float] = {}
    for result in results:
        value = None if result.summary is None else result.summary.get(metric)
        if value is None:
            continue
        at = (grid[y_key].index(result.params[y_key]), grid[x_key].index(result.params[x_key]))
        if at not in cells or (value < cells[at] if lower else value > cells[at]):
            cells[at] = float(value)
    z = [[cells.get((i, j)) for j in range(len(grid[x_key]))] for i in range(len(grid[y_key]))]
    synthetic = any(r.summary and r.summary.get("oi_synthetic") for r in results)
    return HeatmapCells(x_key, y_key, metric, list(grid[x_key]), list(grid[y_key]), z,
                        len(grid) > 2, synthetic)


def heatmap_colours(metric: str) -> dict[str, Any]:
    """Green for better, red for worse, whichever way `metric` is better; a signed figure
    (PnL, R) centred on zero so a loss is never green."""
    lower = metric in LOWER_IS_BETTER or metric in LOWER_IS_BETTER_MORE
    colours: dict[str, Any] = {"colorscale": "RdYlGn_r" if lower else "RdYlGn"}
    if metric in SIGNED_METRICS:
        colours["zmid"] = 0
    return colours


def write_heatmap(info: SweepInfo, results: list[SweepResult], axes: str, metric: str,
                  path: Path) -> None:
    import plotly.graph_objects as go

    cells = heatmap_cells(info, results, axes, metric)
    title = f"sweep {info.sweep_id}: {metric} by {cells.x_key} and {cells.y_key}"
    if cells.best_of_others:
        title += " (each cell: the best over the grid's other keys)"
    if cells.synthetic:
        title += " - SYNTHETIC open interest"
    figure = go.Figure(go.Heatmap(
        x=[str(v) for v in cells.x_values], y=[str(v) for v in cells.y_values], z=cells.z,
        **heatmap_colours(metric),
        text=[["-" if v is None else f"{v:,.2f}" for v in row] for row in cells.z],
        texttemplate="%{text}", colorbar={"title": metric}))
    figure.update_layout(title=title, xaxis_title=cells.x_key, yaxis_title=cells.y_key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(figure.to_html(full_html=True, include_plotlyjs=True),
                        encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the heatmap ({exc.strerror or exc})") from None
