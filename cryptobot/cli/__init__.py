"""Command line: the composition root, the only place that knows paper from live.

Each command group lives in its own module and registers itself on `app`.
"""

from __future__ import annotations

import sys

from cryptobot.cli.app import app
from cryptobot.errors import CryptobotError
from cryptobot.secrets import redact

# Importing a module registers its commands on `app`.
from cryptobot.cli import (  # noqa: E402,F401
    backtest_command,
    data_commands,
    demo_command,
    live_commands,
    macro_command,
    paper_command,
    review_commands,
)

USER_ERROR_EXIT_CODE = 2


def main(argv: list[str] | None = None) -> None:
    """Entry point: a user-caused error ends in one readable line and exit code 2."""
    try:
        app(args=argv, prog_name="cryptobot")
    except CryptobotError as exc:
        sys.stderr.write(f"error: {redact(str(exc))}\n")
        raise SystemExit(USER_ERROR_EXIT_CODE) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
