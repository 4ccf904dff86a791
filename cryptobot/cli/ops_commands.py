"""`cryptobot status` and `cryptobot notify`: watching an unattended bot from outside.

`status` reads the heartbeats of the runs in the log folder (cryptobot/heartbeat.py) and exits
1 when the newest run of a kind (mode and symbols) is silent (no beat for --stale-after) or
when no run is running at all; 0 when every running run is alive. A timer or a monitoring
check runs it; deploy/ has a unit that notifies on its failure. `notify` sends one message to
CRYPTOBOT_NOTIFY_URLS (the systemd units' OnFailure= hook): exit 1 if nothing was delivered.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from cryptobot.cli.app import app
from cryptobot.errors import ConfigError

_SPAN = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
SILENT_EXIT_CODE = 1


def span_ms(text: str, option: str) -> int:
    match = _SPAN.match(text)
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"{option} {text!r}: expected a span like 90s, 5m, 1h")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


@app.command("status")
def status_command(
    stale_after: Annotated[str, typer.Option(
        "--stale-after", help="A running run without a heartbeat for this long is silent "
                              "(e.g. 90s, 5m, 1h; above the base candle's length).")] = "5m",
    log_dir: Annotated[Path | None, typer.Option(
        "--dir", help="Log folder (default: the config's logging.dir).")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", help="Config file (default: config/default.toml).")] = None,
) -> None:
    """Is the bot alive? Exit 0: every running run beat within --stale-after; 1: a run is
    silent (killed, stuck, or its stream is dead), or none is running."""
    from cryptobot.cli.run_setup import settings_or_defaults
    from cryptobot.clock import LiveClock, iso_utc
    from cryptobot.heartbeat import latest_runs, read_heartbeats

    limit_ms = span_ms(stale_after, "--stale-after")
    directory = log_dir or Path(settings_or_defaults(config).logging.dir)
    now_ms = LiveClock().now_ms()
    # a sweep's heartbeat is for `cryptobot sweeps`: not a trading run to watch over
    runs = [run for run in latest_runs(read_heartbeats(directory)) if run.mode != "sweep"]
    silent = running = 0
    for run in runs:
        age_s = (now_ms - run.beat_ms) // 1000
        name = f"{run.mode} run {run.run_id or '-'} ({', '.join(run.symbols)}, pid {run.pid})"
        if run.finished:
            state = f"finished ({run.stop_reason}) at {iso_utc(run.beat_ms)}"
        elif now_ms - run.beat_ms > limit_ms:
            silent += 1
            state = (f"SILENT for {age_s} s (last beat {iso_utc(run.beat_ms)}); if this run "
                     f"was stopped for good, delete its heartbeat {run.path} and `status` "
                     "forgets it")
        else:
            running += 1
            state = f"alive (last beat {age_s} s ago)"
        typer.echo(f"{name}: {state}")
    if silent or not running:
        typer.echo(f"{silent} silent, {running} running (stale after {stale_after}; "
                   f"heartbeats in {directory})", err=True)
        raise typer.Exit(SILENT_EXIT_CODE)


@app.command("notify")
def notify_command(
    message: Annotated[str, typer.Argument(help="The message to send.")],
    title: Annotated[str, typer.Option("--title", help="Its title.")] = "cryptobot",
) -> None:
    """Send one message to CRYPTOBOT_NOTIFY_URLS now (e.g. systemd's OnFailure= hook); exit 1
    if no service took it."""
    from cryptobot.notify.apprise_sink import apprise_sinks
    from cryptobot.secrets import NOTIFY_URLS_ENV, notify_urls

    urls = notify_urls()
    if not urls:
        raise ConfigError(f"no notification URL: set {NOTIFY_URLS_ENV}")
    delivered = 0
    for sink in apprise_sinks(urls):
        if sink.send(title, message):
            delivered += 1
        else:
            typer.echo(f"notifications to {sink.name} failed", err=True)
    if not delivered:
        raise typer.Exit(1)
    typer.echo(f"sent to {delivered} of {len(urls)} notification services")
