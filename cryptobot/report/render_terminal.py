"""Rich tables for `cryptobot runs`, `trades` and `signals` (with a symbol column when the run
holds several symbols)."""

from __future__ import annotations

from rich.table import Table

from cryptobot.clock import iso_utc
from cryptobot.model import EvidenceItem, SignalStatus
from cryptobot.report.lines import SignalLine, TradeLine, gate_text
from cryptobot.report.signal_table import evidence_value
from cryptobot.store import RunListing

# The spike and OI numbers the rules measure (a short's rise from the low where a long's rule
# has the drop from the high); sizing numbers stay in the JSON and the report.
MEASURED = ("body_atr", "volume_ratio", "drop_from_high_pct", "rise_from_low_pct", "oi_change_pct")
# The rebound's evidence (engine/evidence.py), one column each: a mark and the value measured.
EVIDENCE_COLUMNS = {"open_interest": "OI fell", "liquidations": "liq xmed",
                    "funding_flushed": "fund flush", "credit_holding": "credit",
                    "repo_calm": "repo calm"}


def _time(ts_ms: int | None) -> str:
    return "-" if ts_ms is None else iso_utc(ts_ms).replace("T", " ").removesuffix(":00Z")


def _money(value: float) -> str:
    colour = "green" if value > 0 else "red" if value < 0 else "white"
    return f"[{colour}]{value:,.2f}[/]"


def runs_table(runs: list[RunListing], db_name: str) -> Table:
    table = Table(title=f"Runs in {db_name}")
    for name in (
        "id",
        "mode",
        "exchange",
        "symbols",
        "span",
        "data",
        "trades",
        "PnL USDT",
        "finished",
    ):
        table.add_column(name, justify="right" if name in ("id", "trades", "PnL USDT") else "left")
    for run in runs:
        data = run.data_source + (
            " [yellow](OI SYNTHETIC)[/]"
            if run.oi_synthetic and "SYNTHETIC" not in run.data_source
            else ""
        )
        table.add_row(
            run.run_id,
            run.mode,
            run.exchange,
            ", ".join(run.symbols),
            f"{_time(run.start_ms)} .. {_time(run.end_ms)}",
            data,
            str(run.trade_count),
            _money(run.pnl_usdt),
            "yes" if run.finished_ms is not None else "[yellow]no[/]",
        )
    return table


def _title(what: str, run_id: int, symbols: tuple[str, ...] | None) -> str:
    return f"{what} of run {run_id}" + (f" ({', '.join(symbols)})" if symbols else "")


def trades_table(lines: list[TradeLine], run_id: int, *, show_symbol: bool = False,
                 symbols: tuple[str, ...] | None = None) -> Table:
    """`show_symbol`: a column naming each trade's symbol; `symbols`: the ones shown, if not
    all the run's (for the title)."""
    table = Table(title=_title("Trades", run_id, symbols))
    for name in (
        "#",
        *(("symbol",) if show_symbol else ()),
        "side",
        "entry",
        "entry price",
        "exit",
        "exit price",
        "qty",
        "PnL USDT",
        "R",
        "fees",
        "exit reason",
        "gate at entry",
    ):
        table.add_column(
            name,
            justify="left"
            if name in ("symbol", "side", "entry", "exit", "exit reason", "gate at entry")
            else "right",
        )
    for number, line in enumerate(lines, start=1):
        trade = line.trade
        table.add_row(
            str(number),
            *((trade.symbol,) if show_symbol else ()),
            str(line.side),
            _time(trade.entry_ms),
            f"{trade.entry_price:,.2f}",
            _time(trade.exit_ms),
            f"{trade.exit_price:,.2f}",
            f"{trade.qty_base:g}",
            _money(trade.pnl_usdt),
            f"{trade.r_multiple:+.2f}",
            f"{trade.fees_usdt:,.2f}",
            trade.exit_reason,
            gate_text(line.gate, short=True),
        )
    if lines:
        total = sum(line.trade.pnl_usdt for line in lines)
        blanks = ("",) * (7 if show_symbol else 6)
        table.add_row(*blanks, "total", _money(total), "", "", "", "")
    return table


def _metric(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def signals_table(lines: list[SignalLine], run_id: int, *, show_symbol: bool = False,
                  symbols: tuple[str, ...] | None = None) -> Table:
    table = Table(title=_title("Signals", run_id, symbols))
    present = {name for line in lines for name in line.signal.metrics}
    measured = {item.name for line in lines for item in line.signal.evidence}
    evidence_names = [name for name in EVIDENCE_COLUMNS if name in measured]
    if "open_interest" in measured:  # the OI evidence column shows oi_change_pct
        present.discard("oi_change_pct")
    metric_names = [name for name in MEASURED if name in present]
    symbol_column = ("symbol",) if show_symbol else ()
    for name in (*symbol_column, "spike", "decided", "what happened", *metric_names):
        table.add_column(name, justify="right" if name in metric_names else "left",
                         no_wrap=name in ("spike", "decided"),
                         min_width=36 if name == "what happened" else None)
    for name in evidence_names:
        table.add_column(EVIDENCE_COLUMNS[name], justify="right")
    table.add_column("gate")
    for line in lines:
        colour = "green" if line.signal.status is SignalStatus.ENTERED else "yellow"
        table.add_row(
            *((line.signal.symbol,) if show_symbol else ()),
            _time(line.signal.spike_ms),
            _time(line.signal.decided_ms),
            f"[{colour}]{line.outcome}[/]",
            *(_metric(line.signal.metrics.get(name)) for name in metric_names),
            *(_evidence_cell(line.signal.evidence, name) for name in evidence_names),
            gate_text(line.gate, short=True),
        )
    return table


def _evidence_cell(items: tuple[EvidenceItem, ...], name: str) -> str:
    """"[green]yes[/] -3.19%", "[red]no[/] 0.7x", "? " (unknown: missing data, never a no)."""
    item = next((item for item in items if item.name == name), None)
    if item is None:
        return "-"
    mark = "?" if item.holds is None else "[green]yes[/]" if item.holds else "[red]no[/]"
    return f"{mark} {evidence_value(name, item.value)}".strip()
