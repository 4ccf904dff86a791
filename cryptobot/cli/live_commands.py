"""`cryptobot live and cryptobot kill`."""

from __future__ import annotations

from cryptobot.cli.app import app  # noqa: F401
