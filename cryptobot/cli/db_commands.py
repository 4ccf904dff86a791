"""`cryptobot db ...`: looking after the store itself.

`db import-live-state PATH` copies an older bot's live state file (its own `live_state.sqlite`,
from before the store held the live broker's orders, fills and positions) into the store. The
live bot does this by itself for `<logging.dir>/live_state.sqlite`; this command is for a file
kept anywhere else. The store is the live bot's: `--db`, else the store of `--config`, whose
default is the one `cryptobot live` uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cryptobot.cli.app import app

LIVE_CONFIG = Path("config/live.example.toml")

db_app = typer.Typer(help="Look after the store (the database of runs and live state).",
                     no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("import-live-state")
def import_live_state_command(
    path: Annotated[Path, typer.Argument(help="The old live state file (live_state.sqlite).")],
    db: Annotated[
        str | None,
        typer.Option("--db", help="SQLAlchemy URL of the store (default: the config's)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="The live bot's config (default: config/live.example.toml, "
                                      "as `cryptobot live`)."),
    ] = None,
) -> None:
    """Copy an old live_state.sqlite's orders, fills and positions into the store, once."""
    from cryptobot.config import Settings, load_settings
    from cryptobot.store import masked_url
    from cryptobot.store.live_import import import_live_state

    if db is None:
        if config is None and not LIVE_CONFIG.is_file():
            db = Settings().store.url  # outside a checkout: the built-in defaults
        else:
            db = load_settings(config or LIVE_CONFIG).store.url
    counts = import_live_state(db, path)
    typer.echo(f"imported into {masked_url(db)}: {counts.describe()}")
