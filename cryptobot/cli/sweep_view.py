"""How sweeps look on the terminal (rich tables) and as `--json`; plain data in, nothing run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from cryptobot.heartbeat import HeartbeatRecord
    from cryptobot.store.sweeps import SweepInfo, SweepListing, SweepResult

# A sweep beats every 10 s from a thread (cryptobot/heartbeat.py): a minute without a beat is a
# process killed or stuck, whatever its combinations take.
SWEEP_SILENT_AFTER_MS = 60_000


def shown_status(info: SweepInfo, heartbeats: list[HeartbeatRecord], now_ms: int) -> str:
    """The stored status; for a sweep stored as running whose process on this machine is gone
    or silent (killed with -9, a crash), what its heartbeat says instead. Without a heartbeat
    here (a sweep started elsewhere), the stored status."""
    from cryptobot.clock import iso_utc
    from cryptobot.heartbeat import process_gone

    if info.status != "running":
        return info.status
    beats = [b for b in heartbeats if b.mode == "sweep" and b.run_id == str(info.sweep_id)
             and b.started_ms >= (info.created_ms or 0)]
    if not beats:
        return info.status
    beat = max(beats, key=lambda b: b.started_ms)
    if beat.finished:
        return f"{beat.stop_reason} (not stored)"
    if process_gone(beat.pid) or now_ms - beat.beat_ms > SWEEP_SILENT_AFTER_MS:
        return f"stopped (process {beat.pid} silent since {iso_utc(beat.beat_ms)})"
    return info.status


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


def print_listing(console: Console, listings: list[SweepListing], statuses: list[str]) -> None:
    from rich.table import Table

    from cryptobot.clock import iso_utc

    table = Table(title="sweeps")
    for column in ("id", "created", "status", "symbols", "grid", "rows", "errors", "walk-forward",
                   "scheduler"):
        table.add_column(column)
    for listing, status in zip(listings, statuses, strict=True):
        info = listing.info
        grid = ", ".join(f"{k} x{len(v)}" for k, v in info.grid.get("grid", {}).items())
        if info.grid.get("samples"):
            grid += f" ({info.grid['samples']} drawn, seed {info.seed})"
        table.add_row(str(info.sweep_id), iso_utc(info.created_ms), status,
                      ", ".join(info.symbols), grid, str(listing.combinations),
                      str(listing.errors),
                      f"{info.walk_forward} by {info.metric}" if info.walk_forward else "-",
                      info.scheduler)
    console.print(table)
