"""ccxt errors mapped by what we were doing, and the one retry loop every ccxt caller shares."""

from __future__ import annotations

import random

import ccxt
import pytest

from cryptobot.errors import (
    ExchangeError,
    InsufficientFundsError,
    OrderRejectedError,
    RateLimitError,
    TemporaryExchangeError,
)
from cryptobot.exchange.ccxt_errors import map_ccxt_error, retry_after_s, retry_temporary
from cryptobot.exchange.symbols import market_id

BINANCE_TOO_OLD = ccxt.BadRequest('binanceusdm {"code":-1130,"msg":"Data sent for parameter '
                                  "'startTime' is not valid.\"}")


@pytest.mark.parametrize("exc", [ccxt.BadRequest("bad parameter"), ccxt.BadSymbol("XYZ"),
                                 BINANCE_TOO_OLD, ccxt.InsufficientFunds("margin")])
def test_a_refused_read_is_no_order_rejection(exc):
    read = map_ccxt_error(exc, "fetch_open_interest_history BTC/USDT:USDT")
    assert type(read) is ExchangeError
    assert str(read).startswith("fetch_open_interest_history BTC/USDT:USDT: ")
    assert isinstance(map_ccxt_error(exc, "place sig-1", order=True), OrderRejectedError)


def test_order_refusals_keep_their_kind():
    assert type(map_ccxt_error(ccxt.InvalidOrder("lot"), "place", order=True)) \
        is OrderRejectedError
    assert type(map_ccxt_error(ccxt.InsufficientFunds("margin"), "place", order=True)) \
        is InsufficientFundsError
    for order in (True, False):  # temporary whatever we were doing
        assert type(map_ccxt_error(ccxt.DDoSProtection("429"), order=order)) is RateLimitError
        assert type(map_ccxt_error(ccxt.RequestTimeout("slow"), order=order)) \
            is TemporaryExchangeError


class _Venue:
    """Fails `failures` times with `error`, then answers; headers as a ccxt client keeps them."""

    def __init__(self, failures: int, error: TemporaryExchangeError,
                 headers: dict[str, str] | None = None) -> None:
        self.failures, self.error, self.calls = failures, error, 0
        self.last_response_headers = headers or {}

    def call(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_a_rate_limit_waits_what_the_server_asks_and_never_asks_sooner():
    for header, expected_s in (("7", 7.0), ("0", 0.0), ("30", 30.0)):
        venue = _Venue(2, RateLimitError("rate limited"), {"retry-after": header})
        sleeps: list[float] = []
        assert retry_temporary(venue.call, sleep=sleeps.append, max_delay_s=30.0,
                               server_delay_s=lambda v=venue: retry_after_s(v)) == "ok"
        assert sleeps == [expected_s, expected_s]
    venue = _Venue(2, RateLimitError("rate limited"), {"retry-after": "120"})
    sleeps = []
    with pytest.raises(RateLimitError, match="asks to wait 120 s, longer than 30 s"):
        retry_temporary(venue.call, sleep=sleeps.append, max_delay_s=30.0,
                        server_delay_s=lambda: retry_after_s(venue))
    assert venue.calls == 1 and sleeps == []  # given up, not asked again inside the wait


def test_without_retry_after_a_rate_limit_backs_off_harder_than_a_timeout():
    def waits(error: TemporaryExchangeError) -> list[float]:
        venue = _Venue(3, error, {"Content-Type": "application/json"})
        sleeps: list[float] = []
        retry_temporary(venue.call, base_delay_s=1.0, sleep=sleeps.append,
                        rng=random.Random(5), server_delay_s=lambda: retry_after_s(venue))
        return sleeps

    timeout, limited = waits(TemporaryExchangeError("timeout")), waits(RateLimitError("429"))
    assert limited == [2 * s for s in timeout]  # same jitter seed, twice the delay
    assert all(0.5 * 2 ** i <= s <= 1.5 * 2 ** i for i, s in enumerate(timeout))


def test_the_last_temporary_error_says_how_many_tries_it_took():
    venue = _Venue(9, RateLimitError("fetch candles: rate limited"))
    with pytest.raises(RateLimitError, match=r"rate limited \(gave up after 3 tries\)"):
        retry_temporary(venue.call, attempts=3, sleep=lambda s: None)
    assert venue.calls == 3


def test_a_refusal_is_never_retried():
    venue = _Venue(1, ExchangeError("refused"))  # type: ignore[arg-type]
    with pytest.raises(ExchangeError, match="refused"):
        retry_temporary(venue.call, sleep=lambda s: None)
    assert venue.calls == 1


@pytest.mark.parametrize("symbol", ["BTC/USDT:USDT", "BTC/USDT", "BTCUSDT", "btcusdt"])
def test_every_spelling_of_the_symbol_has_one_market_id(symbol):
    assert market_id(symbol) == "BTCUSDT"
