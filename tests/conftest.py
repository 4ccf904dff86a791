"""Shared test helpers. Each area keeps its own fixtures in tests/<area>/conftest.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def _cryptobot_logging_reset():
    """A command run in-process (even from a module-scoped fixture) sets up the 'cryptobot'
    logger: its own handlers, no propagation. Put it back as Python has it after each test,
    so later tests' caplog still sees records."""
    yield
    logger = logging.getLogger("cryptobot")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate, logger.level = True, logging.NOTSET


def backtest_parts(settings):
    """What a backtest's composition root chooses: the fill simulator on a simulated clock."""
    from cryptobot.brokers.paper import PaperBroker
    from cryptobot.clock import SimClock

    clock = SimClock(0)
    return PaperBroker(settings.costs, clock), clock


@pytest.fixture
def run_cli(capsys):
    """Run `cryptobot ARGS...` in-process; returns (exit_code, stdout, stderr)."""
    from cryptobot.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def sample_run():
    """The hand-made sample run on real candles (tests/store/sample_run.py), shared by the
    store and review tests."""
    from tests.store import sample_run as module

    return module
