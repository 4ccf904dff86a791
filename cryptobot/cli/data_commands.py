"""`cryptobot data ...`: download, import and inspect stored market data."""

from __future__ import annotations

import typer

from cryptobot.cli.app import app

data_app = typer.Typer(help="Download, import and inspect stored market data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
