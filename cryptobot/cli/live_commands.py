"""`cryptobot live` and `cryptobot kill`: trading with exchange keys, behind safety rails.

`live` refuses to start without --confirm-live and without keys (environment or an owner-only
key file), prints what it is about to trade with before any order, connects, sets margin mode
and leverage, and reconciles stored state with the exchange. `kill` writes the kill-switch file,
cancels the bot's orders and closes its positions at market.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cryptobot.brokers.live import kill_switch_present
from cryptobot.brokers.live_setup import build_live_broker
from cryptobot.cli.app import app
from cryptobot.clock import LiveClock
from cryptobot.config import Settings, load_settings
from cryptobot.errors import ConfigError
from cryptobot.logs import configure_logging
from cryptobot.secrets import load_api_keys

console = Console()

CONFIG_OPTION = typer.Option(Path("config/live.example.toml"), "--config", help="TOML settings")
KEY_FILE_OPTION = typer.Option(None, "--key-file",
                               help="TOML with 'key' and 'secret', readable by its owner only")


def _summary(settings: Settings, equity_usdt: float | None, report) -> Table:
    table = Table(title="LIVE TRADING" + (" (exchange demo account)"
                                          if settings.live.demo_trading else " (REAL MONEY)"))
    table.add_column("setting")
    table.add_column("value")
    risk = settings.risk
    rows = [
        ("account", f"{settings.market.exchange}, equity {equity_usdt or 0:,.2f} USDT"),
        ("symbol", settings.market.symbol),
        ("margin / leverage", f"{settings.live.margin_mode}, {settings.live.leverage}x"),
        ("max notional", f"{risk.max_notional_usdt:,.0f} USDT"),
        ("risk per trade", f"{risk.risk_per_trade:.2%} of equity"),
        ("max daily loss", f"{risk.max_daily_loss:.2%} of equity"),
        ("max open positions", str(risk.max_open_positions)),
        ("stop trigger", settings.costs.stop_trigger),
        ("kill switch file", risk.kill_switch_file),
        ("state", settings.live.state_url),
        ("reconciliation", f"{len(report.unknown_positions)} unknown position(s), "
                           f"{len(report.stops_placed)} stop(s) re-placed, "
                           f"{report.fills_recorded} fill(s) caught up"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


@app.command("live")
def live(
    config: Path = CONFIG_OPTION,
    key_file: Path | None = KEY_FILE_OPTION,
    confirm_live: bool = typer.Option(False, "--confirm-live",
                                      help="required: you accept that real orders are sent"),
    once: bool = typer.Option(False, "--once",
                              help="connect, reconcile, print the summary and exit"),
) -> None:
    """Trade with exchange keys (needs --confirm-live)."""
    settings = load_settings(config)
    if not confirm_live:
        raise ConfigError("live trading sends real orders: add --confirm-live to confirm")
    keys = load_api_keys(key_file)
    configure_logging(settings.logging.dir, settings.logging.level, settings.logging.max_bytes,
                      settings.logging.backup_count)
    clock = LiveClock()
    broker, report = build_live_broker(settings, keys, clock)
    console.print(_summary(settings, broker.equity_usdt, report))
    for symbol, qty in report.unknown_positions:
        console.print(f"[yellow]unknown position on the exchange: {symbol} {qty:g} "
                      "(left alone; live.adopt_unknown_positions is off)[/yellow]")
    if once:
        return
    # Until the streaming runner drives entries, keep what is open protected and reconciled.
    console.print("watching positions (poll + reconcile); Ctrl-C to stop")
    next_reconcile_s = time.monotonic() + settings.live.reconcile_interval_s
    while not kill_switch_present(settings):
        broker.poll()
        if time.monotonic() >= next_reconcile_s:
            from cryptobot.brokers.reconcile import reconcile

            reconcile(broker)
            next_reconcile_s = time.monotonic() + settings.live.reconcile_interval_s
        time.sleep(5.0)
    broker.flatten_all("kill switch file found")
    console.print("kill switch: orders cancelled, positions closed; stopped")


@app.command("kill")
def kill(
    config: Path = CONFIG_OPTION,
    key_file: Path | None = KEY_FILE_OPTION,
) -> None:
    """Write the kill-switch file, cancel the bot's orders and close its positions at market."""
    settings = load_settings(config)
    switch = Path(settings.risk.kill_switch_file)
    switch.parent.mkdir(parents=True, exist_ok=True)
    switch.write_text("written by `cryptobot kill`\n")
    console.print(f"kill switch written: {switch} (a running bot flattens and stops)")
    keys = load_api_keys(key_file)
    configure_logging(settings.logging.dir, settings.logging.level, settings.logging.max_bytes,
                      settings.logging.backup_count)
    broker, _ = build_live_broker(settings, keys, LiveClock())
    open_positions = broker.state.positions()
    broker.flatten_all("cryptobot kill")
    console.print(f"closed {len(open_positions)} position(s) at market and cancelled the bot's "
                  "orders")
