"""ccxt's `bybit` client with history requests kept inside one documented Bybit page.

The shared backfill (cryptobot.exchange.backfill) asks for `limit` rows from `since`, Binance
style, with limits Binance allows (500 open-interest rows). Bybit documents smaller pages
(open interest and funding: 1-200 rows; klines: 1-1000), lists newest first, and does not say
which rows a [start, end] window larger than a page returns. So each request here gets a limit
within the documented range and an end (`until`) no later than one page after `since`: every
row of the window fits in the answer, whichever end Bybit pages from.
"""

from __future__ import annotations

from typing import Any

from cryptobot.clock import HOUR_MS
from cryptobot.data.timeframes import timeframe_to_ms

KLINE_PAGE = 1000  # docs v5/market/kline: limit [1, 1000]
OI_PAGE = 200  # docs v5/market/open-interest: limit [1, 200]
FUNDING_PAGE = 200  # docs v5/market/history-fund-rate: limit [1, 200]
FUNDING_STEP_MS = 8 * HOUR_MS  # BTCUSDT's fundingInterval (480 min); shorter ones only shrink pages


def _page(since: int | None, limit: int | None, page: int, step_ms: int,
          params: dict | None) -> tuple[int, dict]:
    size = min(limit or page, page)
    bounded = dict(params or {})
    if since is not None:
        page_end_ms = since + size * step_ms - 1
        bounded["until"] = min(int(bounded.get("until", page_end_ms)), page_end_ms)
    return size, bounded


class BybitHistoryPages:
    """Wraps an async ccxt `bybit`; everything but the three history calls passes through."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def fetch_ohlcv(self, symbol: str, timeframe: str = "1m", since: int | None = None,
                          limit: int | None = None, params: dict | None = None) -> list:
        size, bounded = _page(since, limit, KLINE_PAGE, timeframe_to_ms(timeframe), params)
        return await self._client.fetch_ohlcv(symbol, timeframe, since=since, limit=size,
                                              params=bounded)

    async def fetch_open_interest_history(self, symbol: str, timeframe: str = "1h",
                                          since: int | None = None, limit: int | None = None,
                                          params: dict | None = None) -> list:
        size, bounded = _page(since, limit, OI_PAGE, timeframe_to_ms(timeframe), params)
        return await self._client.fetch_open_interest_history(symbol, timeframe, since=since,
                                                              limit=size, params=bounded)

    async def fetch_funding_rate_history(self, symbol: str, since: int | None = None,
                                         limit: int | None = None,
                                         params: dict | None = None) -> list:
        size, bounded = _page(since, limit, FUNDING_PAGE, FUNDING_STEP_MS, params)
        return await self._client.fetch_funding_rate_history(symbol, since=since, limit=size,
                                                             params=bounded)
