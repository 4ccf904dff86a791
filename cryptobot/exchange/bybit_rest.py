"""Nothing left to do here: cryptobot.exchange.backfill keeps every history request inside one
documented page for Bybit and Binance alike (`backfill.PAGE_LIMITS`).

`BybitHistoryPages` stays only because cryptobot/cli/paper_command.py still wraps its Bybit
client in it; it hands the client back unchanged. Remove this file with that call.
"""

from __future__ import annotations

from typing import Any


def BybitHistoryPages(client: Any) -> Any:  # noqa: N802 - keeps the old class's name for callers
    """The ccxt `bybit` client itself (see the module docstring)."""
    return client
