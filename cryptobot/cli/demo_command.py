"""`cryptobot demo`: paper-trade a recorded real market replay, then write the HTML report.

It runs `cryptobot paper --replay` on the bundled 2024-08-05 crash window (real Binance 5m
candles; its open interest is SYNTHETIC and labelled so) over 127.0.0.1, then
`cryptobot report`. Nothing leaves this machine.
"""

from __future__ import annotations

from pathlib import Path

import typer

from cryptobot.cli.app import app
from cryptobot.cli.paper_command import paper
from cryptobot.cli.review_commands import report_command

DEMO_DATA = Path("data/btc_2024-08_crash")
DEMO_CONFIG = Path("config/replay.toml")
DEMO_DB = "sqlite:///logs/demo.sqlite"
DEMO_REPORT = Path("logs/demo_report.html")


@app.command()
def demo(
    data: Path = typer.Option(DEMO_DATA, "--data", help="Stored data to replay."),
    config: Path = typer.Option(DEMO_CONFIG, "--config", help="Settings TOML."),
    db: str = typer.Option(DEMO_DB, "--db", help="SQLAlchemy URL of the store."),
    out: Path = typer.Option(DEMO_REPORT, "--out", help="Where to write the HTML report."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Every order event (else a stop's moves are one line "
                                      "a trade)."),
) -> None:
    """Paper-trade the bundled 2024-08-05 crash replay, print the trades, write the report."""
    typer.echo(f"cryptobot demo: paper trading {data} replayed as a Binance stream on 127.0.0.1")
    paper(config=config, replay=data, symbol=None, start=None, end=None, speed=0.0, db=db,
          heartbeat=False, resume=False, run_id=None, verbose=verbose)
    report_command(out=out, run=None, db=db, config=config)
    typer.echo(f"report: {out.resolve()}")
