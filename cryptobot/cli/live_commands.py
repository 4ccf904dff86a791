"""`cryptobot live` and `cryptobot kill`: trading with exchange keys, behind safety rails.

`live` refuses to start without --confirm-live and without keys (environment or an owner-only
key file), connects, sets margin mode and leverage on every symbol it trades (`market.symbols`,
or `--symbol A,B`), reconciles stored state with the exchange, prints what it is about to trade
with, then runs the paper runner with the live broker (see cryptobot/cli/live_run.py) until
Ctrl-C or the kill switch. `kill` writes the kill-switch file (a running `live` flattens and
stops), cancels the bot's orders and closes its positions, in every symbol.

The exchange and store libraries are imported when a command runs, not when the CLI starts.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cryptobot.cli.app import app
from cryptobot.errors import ConfigError

CONFIG_OPTION = typer.Option(Path("config/live.example.toml"), "--config", help="TOML settings")
KEY_FILE_OPTION = typer.Option(None, "--key-file",
                               help="TOML with 'key' and 'secret', readable by its owner only")
SYMBOL_OPTION = typer.Option(None, "--symbol",
                             help="ccxt symbol(s) instead of market.symbols, comma-separated "
                                  "(BTC/USDT:USDT,ETH/USDT:USDT): all traded in this process")


def _console():
    from cryptobot.cli.paper_console import run_console

    return run_console()


@app.command("live")
def live(
    config: Path = CONFIG_OPTION,
    key_file: Path | None = KEY_FILE_OPTION,
    symbol: str | None = SYMBOL_OPTION,
    confirm_live: bool = typer.Option(False, "--confirm-live",
                                      help="required: you accept that real orders are sent"),
    once: bool = typer.Option(False, "--once",
                              help="connect, reconcile, print the summary and exit"),
    db: str | None = typer.Option(None, "--db", help="SQLAlchemy URL of the run store."),
    heartbeat: bool = typer.Option(True, "--heartbeat/--no-heartbeat",
                                   help="One line per closed signal candle."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Every order event (else a stop's moves are one line "
                                      "a trade)."),
) -> None:
    """Trade with exchange keys (needs --confirm-live)."""
    import asyncio

    from cryptobot.cli.live_run import LiveVenue, connect, run_live_session
    from cryptobot.cli.run_setup import start_logging, store_url, with_symbols
    from cryptobot.clock import LiveClock
    from cryptobot.config import load_settings
    from cryptobot.engine.risk import KillSwitch
    from cryptobot.secrets import load_api_keys

    settings = with_symbols(load_settings(config), symbol)
    if not confirm_live:
        raise ConfigError("live trading sends real orders: add --confirm-live to confirm")
    keys = load_api_keys(key_file)
    venue = LiveVenue(LiveClock())
    start_logging(settings, venue.clock, simulated=False)
    console = _console()
    if once:
        connect(settings, keys, venue, console, KillSwitch(settings.risk.kill_switch_file))
        return
    db_url = store_url(settings, db)
    from cryptobot.runners.stream_session import stop_signals_interrupt

    try:
        with stop_signals_interrupt():  # SIGTERM, SIGHUP before trading starts: as Ctrl-C
            asyncio.run(run_live_session(settings, keys, venue, console, db_url, heartbeat,
                                         verbose))
    except KeyboardInterrupt:
        console.print("stopped (Ctrl-C); stops and targets stay on the exchange")


@app.command("kill")
def kill(
    config: Path = CONFIG_OPTION,
    key_file: Path | None = KEY_FILE_OPTION,
) -> None:
    """Write the kill-switch file, cancel the bot's orders and close its positions at market:
    every symbol's (the file stops a running bot whatever it watches)."""
    import logging

    from cryptobot.brokers.live.setup import build_live_broker
    from cryptobot.cli.run_setup import start_logging
    from cryptobot.clock import LiveClock
    from cryptobot.config import load_settings
    from cryptobot.engine.risk import KillSwitch
    from cryptobot.secrets import load_api_keys

    settings = load_settings(config)
    console = _console()
    switch = Path(settings.risk.kill_switch_file)
    switch.parent.mkdir(parents=True, exist_ok=True)
    switch.write_text("written by `cryptobot kill`\n")
    console.print(f"kill switch written: {switch} (a running bot flattens and stops)")
    keys = load_api_keys(key_file)
    clock = LiveClock()
    start_logging(settings, clock, simulated=False)
    logging.getLogger("cryptobot.kill").warning(
        "kill switch written: %s", switch, extra={"event": "kill_switch", "_file_only": True})
    broker, _ = build_live_broker(settings, keys, clock, KillSwitch(switch),
                                  set_up_symbols=False)
    open_positions = broker.state.positions()
    broker.flatten_all("cryptobot kill")
    console.print(f"closed {len(open_positions)} position(s) at market and cancelled the bot's "
                  "orders")
