"""Command line: the composition root, the only place that knows paper from live.

Each command group lives in its own module and registers itself on `app`. The modules import
their heavy dependencies (pandas, ccxt, SQLAlchemy, plotly) inside the commands, and `main`
imports only the module of the command named on the command line, so the CLI starts fast.
"""

from __future__ import annotations

import importlib
import logging
import sys

from typer import Abort
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from cryptobot.cli.app import app
from cryptobot.errors import CryptobotError, ReconciliationError, TemporaryExchangeError
from cryptobot.secrets import redact

USER_ERROR_EXIT_CODE = 2
# The exchange could not be reached or reconciled (after the configured retries): trying again
# later may succeed, so a supervisor restarts on it (EX_TEMPFAIL), unlike a user error.
TEMPORARY_FAILURE_EXIT_CODE = 75

# Which module registers each command. A command line naming one of them imports that module
# only; anything else (no command, --help, a name not listed) imports them all. A test checks
# this against what the modules register.
COMMAND_MODULES = {
    "backtest": "backtest_command",
    "lookahead": "lookahead_command",
    "paper": "paper_command",
    "live": "live_commands",
    "kill": "live_commands",
    "demo": "demo_command",
    "runs": "review_commands",
    "trades": "review_commands",
    "signals": "review_commands",
    "report": "review_commands",
    "logs": "review_commands",
    "data": "data_commands",
    "db": "db_commands",
    "macro": "macro_command",
    "sweep": "sweep_commands",
    "sweeps": "sweep_commands",
    "status": "ops_commands",
    "notify": "ops_commands",
}


def register_commands(argv: list[str]) -> None:
    """Import the command modules `argv` needs; importing one registers its commands."""
    command = argv[0] if argv and not argv[0].startswith("-") else None
    if command in COMMAND_MODULES:
        modules = [COMMAND_MODULES[command]]
    else:
        modules = list(dict.fromkeys(COMMAND_MODULES.values()))  # in help's order
    for module in modules:
        importlib.import_module(f"cryptobot.cli.{module}")


def _log_to_file(message: str, event: str) -> None:
    """Into the JSON log if the command set one up (`cryptobot logs tail` shows it); the console
    gets its one line from `main`."""
    if logging.getLogger("cryptobot").handlers:
        logging.getLogger("cryptobot.cli").error(message, extra={"event": event,
                                                                 "_file_only": True})


def main(argv: list[str] | None = None) -> None:
    """Entry point: a user-caused error ends in one readable line and exit code 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        register_commands(args)
        # Not standalone: a wrong option comes back here as a UsageError (one line below),
        # instead of Typer's five-line box.
        code = app(args=args, prog_name="cryptobot", standalone_mode=False)
    except NoArgsIsHelpError:
        raise SystemExit(USER_ERROR_EXIT_CODE) from None  # the help is already printed
    except UsageError as exc:
        _fail(_usage_message(exc), "usage_error")
    except (TemporaryExchangeError, ReconciliationError) as exc:
        _fail(redact(str(exc)), "temporary_failure", TEMPORARY_FAILURE_EXIT_CODE)
    except CryptobotError as exc:
        _fail(redact(str(exc)), "error")
    except OSError as exc:
        # The last net for a file or folder the bot could not use (commands name their own
        # paths where they can): its name and the reason, never a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(redact(f"{where}{exc.strerror or exc}"), "error")
    except Abort:
        sys.stderr.write("aborted\n")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        _interrupted()
    if code == 130:  # Typer turns Ctrl-C inside a command into exit code 130
        _interrupted()
    if isinstance(code, int) and code:
        raise SystemExit(code)


def _usage_message(exc: UsageError) -> str:
    """Typer's option error on one line, with where to look."""
    message = " ".join(exc.format_message().split())
    command = exc.ctx.command_path if exc.ctx is not None else "cryptobot"
    return f"{message} (see `{command} --help`)"


def _fail(message: str, event: str, code: int = USER_ERROR_EXIT_CODE) -> None:
    message = " ".join(message.split())  # one line, whatever the message held
    _log_to_file(message, event)
    sys.stderr.write(f"error: {message}\n")
    raise SystemExit(code) from None


def _interrupted() -> None:
    _log_to_file("interrupted", "interrupted")
    sys.stderr.write("interrupted\n")
    raise SystemExit(130) from None
