"""The Typer application every command module registers on."""

from __future__ import annotations

import typer
from typer.core import TyperOption

app = typer.Typer(
    name="cryptobot",
    help="Buys the rebound after a crypto liquidation cascade, when the macro backdrop allows it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def _commands() -> None:
    # A callback keeps `app` a group of commands even when `main` has registered only the one
    # named on the command line (Typer runs a lone command as the whole program).
    pass


def _flags_take_no_value(option: TyperOption, ctx) -> str | None:
    """Help's type column: none for a flag. Typer 0.29's rich help shows `--json <bool>` as if
    `--json true` were accepted (it is refused); its plain help already shows flags bare."""
    if option.is_flag and not option.count:
        return None
    return _value_type(option, ctx)


_value_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flags_take_no_value  # type: ignore[method-assign]
