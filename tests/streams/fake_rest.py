"""A duck-typed stand-in for a ccxt client, serving real candles only as far as the clock allows.

Used where a test wants to count REST calls or make them fail; the end-to-end tests use real ccxt
against the loopback REST server instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ccxt

from cryptobot.clock import Clock
from cryptobot.model import Candle, FundingRate, OpenInterest


@dataclass
class FakeRest:
    candles: list[Candle]
    samples: list[OpenInterest]
    clock: Clock
    fail_next: int = 0  # this many calls (of `fail_method`, or any) raise a network error first
    fail_method: str | None = None
    calls: list[str] = field(default_factory=list)
    funding: list[FundingRate] = field(default_factory=list)
    id: str = "binanceusdm"  # the ccxt id: backfill picks its page sizes by it
    by_symbol: dict[str, list[Candle]] = field(default_factory=dict)  # else `candles` for all

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_next and self.fail_method in (None, name):
            self.fail_next -= 1
            raise ccxt.NetworkError(f"{name}: connection reset (simulated)")

    async def fetch_ohlcv(self, symbol, timeframe, since=None, limit=500, params=None):
        self._maybe_fail("fetch_ohlcv")
        now_ms = self.clock.now_ms()
        # Like Binance, the candle still forming is the last row.
        rows = [[c.ts_open_ms, c.open, c.high, c.low, c.close, c.volume]
                for c in self.by_symbol.get(symbol, self.candles)
                if c.ts_open_ms >= (since or 0) and c.ts_open_ms <= now_ms]
        return rows[:limit]

    async def fetch_open_interest(self, symbol, params=None):
        self._maybe_fail("fetch_open_interest")
        now_ms = self.clock.now_ms()
        visible = [s for s in self.samples if s.ts_ms <= now_ms]
        if not visible:
            raise ccxt.BadRequest("no open interest yet (simulated)")
        last = visible[-1]
        return {"timestamp": last.ts_ms, "openInterestAmount": last.oi_contracts,
                "openInterestValue": last.oi_value_usdt, "info": {}}

    async def fetch_open_interest_history(self, symbol, timeframe="5m", since=None, limit=30,
                                          params=None):
        self._maybe_fail("fetch_open_interest_history")
        until_ms = min((params or {}).get("until", self.clock.now_ms()), self.clock.now_ms())
        rows = [s for s in self.samples if (since or 0) <= s.ts_ms <= until_ms][:limit]
        return [{"timestamp": s.ts_ms, "openInterestAmount": s.oi_contracts,
                 "openInterestValue": s.oi_value_usdt, "info": {}} for s in rows]

    async def fapiPublicGetFundingInfo(self, params=None):  # noqa: N802 (ccxt's name)
        self._maybe_fail("fundingInfo")
        return []  # no symbol adjusted: all settle every 8h

    async def fetch_funding_rate_history(self, symbol, since=None, limit=100, params=None):
        self._maybe_fail("fetch_funding_rate_history")
        until_ms = min((params or {}).get("until", self.clock.now_ms()), self.clock.now_ms())
        return [{"timestamp": r.ts_ms, "fundingRate": r.rate} for r in self.funding
                if (since or 0) <= r.ts_ms <= until_ms][:limit]
