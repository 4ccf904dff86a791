"""`cryptobot backtest`."""

from __future__ import annotations

from cryptobot.cli.app import app  # noqa: F401
