"""`cryptobot macro`: the macro gate's inputs, QT state, HYG trend and decision at one moment."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cryptobot.cli.app import app
from cryptobot.clock import Clock, LiveClock, SimClock, iso_utc, parse_utc
from cryptobot.errors import ConfigError

if TYPE_CHECKING:
    from cryptobot.model import GateDecision


def decision_report(decision: GateDecision, enabled: bool) -> dict[str, Any]:
    """The decision as one JSON-ready object (what `--json` prints)."""
    from cryptobot.macro.rules import STALE

    inputs = decision.inputs
    return {
        "asof": iso_utc(decision.ts_ms),
        "asof_ms": decision.ts_ms,
        "qt_state": inputs.get("qt_state"),
        "qt_calendar": inputs.get("qt_calendar"),
        "qt_active": inputs.get("qt_active"),
        "qt_decided_by": inputs.get("qt_decided_by"),
        "tga_state": inputs.get("tga_state"),
        "repo_stress": inputs.get("repo_stress"),
        "hyg_trend": inputs.get("hyg_trend"),
        "credit_source": inputs.get("credit_source"),
        "credit_holding": inputs.get("credit_holding"),
        "repo_calm": inputs.get("repo_calm"),
        "unused": inputs.get("unused", []),
        "decision": decision.action.value,
        "size_factor": decision.size_factor,
        "stale": any(reason.startswith(STALE) for reason in decision.reasons),
        "gate_enabled": enabled,
        "fetch_method": inputs.get("fetch_method"),
        "reasons": list(decision.reasons),
        "inputs": inputs,
    }


@app.command("macro")
def macro(
    asof: Annotated[str | None, typer.Option(
        "--asof", help="UTC date or time, e.g. 2024-08-05 (default: now)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="settings TOML (default: built-in defaults)")] = None,
) -> None:
    """Show the macro gate: QT (WALCL and the official dates), the TGA, repo stress, credit,
    and the decision."""
    from cryptobot.config import load_settings

    settings = load_settings(config)
    clock: Clock = LiveClock()
    if asof is not None:
        try:
            clock = SimClock(parse_utc(asof))
        except ValueError:
            raise ConfigError(f"--asof: {asof!r} is not a date like 2024-08-05") from None
    from cryptobot.macro.loader import load_history
    from cryptobot.macro.rules import evaluate

    history = load_history(settings.macro, clock)
    now_ms = clock.now_ms()
    decision = evaluate(history.snapshot_at(now_ms), settings.macro)
    report = decision_report(decision, settings.macro.enabled)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    _render(report, asof is None)


def _render(report: dict[str, Any], is_now: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    table = Table(title=f"Macro gate as of {report['asof']} ({report['fetch_method']})")
    for column in ("input", "value", "observation", "published (UTC)", "age", "detail"):
        table.add_column(column)
    inputs = report["inputs"]
    repo = inputs.get("repo")
    rows = [("WALCL ($M)", inputs.get("walcl"), "age_days", _walcl_detail),
            ("HYG close", inputs.get("hyg"), "age_trading_days", _trend_detail),
            ("HY spread (%)", inputs.get("oas"), "age_trading_days", _trend_detail),
            ("TGA WTREGEN ($M)", inputs.get("tga"), "age_days", _tga_detail),
            ("SOFR (%)", repo and {**repo["sofr"], "age": None}, "age", _in_spread),
            ("IORB (%)", repo and {**repo["iorb"], "age": None}, "age", _in_spread),
            ("SOFR-IORB (bps)", repo and {**repo, "value": repo["spread_bps"]},
             "age_business_days", _repo_detail),
            ("RRP ($B)", inputs.get("rrp"), "age_days", _rrp_detail)]
    shown = {"WTREGEN", "SOFR", "IORB", "RRPONTSYD"}
    rows += [(name, item, "age_days", lambda _: "reported only")
             for name, item in inputs.get("funding", {}).items() if name not in shown]
    for label, item, age_key, detail in rows:
        if item is None:
            table.add_row(label, "-", "-", "-", "-", "not available")
            continue
        value = item["value"]
        table.add_row(label, f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}",
                      item["observation_date"], item["published_utc"],
                      _age_text(item[age_key], age_key), detail(item))
    console.print(table)
    qt = {True: "active", False: "not active", None: "unknown"}[report["qt_active"]]
    console.print(f"QT state: [bold]{report['qt_state']}[/] (WALCL data; calendar "
                  f"{report['qt_calendar']})   QT for the decision: [bold]{qt}[/] (by "
                  f"{report['qt_decided_by']})")
    console.print(f"TGA: [bold]{report['tga_state']}[/]   repo stress: "
                  f"[bold]{report['repo_stress']}[/]")
    console.print(f"HYG trend: [bold]{report['hyg_trend']}[/] (credit from "
                  f"{report['credit_source'] or 'no current source'})   credit holding its "
                  f"low: {_yes_no(report['credit_holding'])}   repo calm: "
                  f"{_yes_no(report['repo_calm'])}")
    colour = {"ALLOW": "green", "REDUCE": "yellow", "BLOCK": "red"}[report["decision"]]
    console.print(f"Decision: [bold {colour}]{report['decision']}[/] "
                  f"(size x{report['size_factor']:g})")
    for reason in report["reasons"]:
        console.print(f"  - {reason}", markup=False)
    if report["stale"] and is_now:
        console.print("[bold]Note:[/] the macro data does not reach today (the bundled snapshot "
                      "ends in mid-2026), so the gate blocks, as it must. Pass --asof inside the "
                      "data, or set macro.use_fred = true to fetch current data.")
    if not report["gate_enabled"]:
        console.print("[bold]Note:[/] macro.enabled = false: the engine ignores this decision.")


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[value]


def _age_text(age: float | None, age_key: str) -> str:
    """WALCL and funding age in calendar days, HYG and the spread in trading days, the repo
    spread in business days (SOFR and IORB share its row)."""
    if age is None:
        return ""
    if age_key == "age_trading_days":
        return f"{age:g} trading d"
    if age_key == "age_business_days":
        return f"{age:g} business d"
    return f"{age:g} d"


def _tga_detail(item: dict[str, Any]) -> str:
    change = item.get("change_musd")
    text = "n/a" if change is None else f"{change / 1000:+.1f}B"
    return f"{item['change_weeks']}w change {text}: {item.get('state')}"


def _in_spread(_: dict[str, Any]) -> str:
    return "in the SOFR-IORB row below"


def _repo_detail(item: dict[str, Any]) -> str:
    median = item.get("range_median_bps")
    stress = {True: "stress on", False: "calm", None: "unused"}[item.get("stress")]
    return f"recent median {'n/a' if median is None else f'{median:+.1f}'}: {stress}"


def _rrp_detail(item: dict[str, Any]) -> str:
    change = item.get("change_busd")
    text = "n/a" if change is None else f"{change:+,.1f}B"
    return f"{item['change_days']}d change {text} (context)"


def _walcl_detail(item: dict[str, Any]) -> str:
    avg = item.get("avg_change_13w_musd")
    return "13w change avg: n/a" if avg is None else f"13w change avg {avg / 1000:+.1f}B"


def _trend_detail(item: dict[str, Any]) -> str:
    slow, change = item.get("sma_slow"), item.get("sma_fast_change")
    if slow is None or change is None:
        return f"trend {item.get('trend')}"
    return f"SMA slow {slow:.2f}, SMA fast slope {change:+.3f}: {item.get('trend')}"
