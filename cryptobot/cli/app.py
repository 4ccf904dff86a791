"""The Typer application every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="cryptobot",
    help="Buys the rebound after a crypto liquidation cascade, when the macro backdrop allows it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help (click's own formatting): rich's help pulls in markdown-it, pygments and
    # attrs, which made `cryptobot --help` take 0.35 s instead of 0.2 s on a shared 2-core box.
    rich_markup_mode=None,
)


@app.callback()
def _commands() -> None:
    # A callback keeps `app` a group of commands even when `main` has registered only the one
    # named on the command line (Typer runs a lone command as the whole program).
    pass

