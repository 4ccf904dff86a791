"""How sweeps look on the terminal (rich tables) and as `--json`; plain data in, nothing run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from cryptobot.store.sweeps import SweepInfo, SweepListing, SweepResult


def rows_json(sweep_id: int, results: list[SweepResult]) -> dict[str, Any]:
    """{"sweep_id", "rows": [{"params", "summary"} (and "error", window and phase when there
    are)]}, in the combinations' order."""
    rows = []
    for result in results:
        row: dict[str, Any] = {"params": result.params, "summary": result.summary}
        if result.error is not None:
            row["error"] = result.error
        if result.phase is not None:
            row.update(window=result.window, phase=result.phase)
        if result.detail is not None:
            row.update(result.detail)
        rows.append(row)
    return {"sweep_id": sweep_id, "rows": rows}


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4f}"
    return str(value)


def print_results(console: Console, info: SweepInfo, results: list[SweepResult],
                  sort: str | None = None) -> None:
    """One row per combination: its parameters, the headline figures, its error if any."""
    from rich.table import Table

    from cryptobot.clock import iso_utc
    from cryptobot.sweep.metrics import METRICS, ranking_key

    if sort is not None:
        key = ranking_key(sort)
        results = sorted(results, key=lambda r: key(r.summary))
    keys = list(info.grid.get("grid", {}))
    span = (f"{iso_utc(info.start_ms) if info.start_ms else 'start'} .. "
            f"{iso_utc(info.end_ms) if info.end_ms else 'end'}")
    table = Table(title=f"sweep {info.sweep_id} ({info.status}) {', '.join(info.symbols)} "
                        f"{span}" + (f", sorted by {sort}" if sort else ""))
    table.add_column("#", justify="right")
    phases = info.walk_forward is not None
    if phases:
        table.add_column("window")
        table.add_column("phase")
    for key_name in keys:
        table.add_column(key_name.removeprefix("strategy.params."))
    for metric in METRICS:
        table.add_column(metric, justify="right")
    for result in results:
        figures = ([_value((result.summary or {}).get(m)) for m in METRICS]
                   if result.error is None else [f"error: {result.error}"] + [""] * 5)
        where = [str(result.window), result.phase or ""] if phases else []
        table.add_row(str(result.combination), *where,
                      *[_value(result.params.get(k)) for k in keys], *figures)
    console.print(table)


def print_listing(console: Console, listings: list[SweepListing]) -> None:
    from rich.table import Table

    from cryptobot.clock import iso_utc

    table = Table(title="sweeps")
    for column in ("id", "created", "status", "symbols", "grid", "rows", "errors", "walk-forward",
                   "scheduler"):
        table.add_column(column)
    for listing in listings:
        info = listing.info
        grid = ", ".join(f"{k} x{len(v)}" for k, v in info.grid.get("grid", {}).items())
        if info.grid.get("samples"):
            grid += f" ({info.grid['samples']} drawn, seed {info.seed})"
        table.add_row(str(info.sweep_id), iso_utc(info.created_ms), info.status,
                      ", ".join(info.symbols), grid, str(listing.combinations),
                      str(listing.errors),
                      f"{info.walk_forward} by {info.metric}" if info.walk_forward else "-",
                      info.scheduler)
    console.print(table)
