"""The gateway's lot and tick rounding (brokers/live/tick_rounding.py) writes every value as
ccxt's own amount_to_precision and price_to_precision write it, and fails where they fail, for
the fake venue's BTCUSDT market and for other tick sizes (a market's reload changes its tick)."""

from __future__ import annotations

import random

import ccxt
import pytest

from cryptobot.brokers.live.setup import make_ccxt_client
from cryptobot.brokers.live.tick_rounding import TickRounding
from tests.live.conftest import live_settings

SYMBOL = "BTC/USDT:USDT"
TICK_SIZES = [0.001, 0.1, 0.01, 1.0, 0.5, 0.25, 5e-05, 1e-08, 0.0001, 10.0, 0.3, "0.001"]


def values(seed: int, tick: float) -> list[float | str]:
    """Random magnitudes, values on, just off and half way between ticks (where a float's error
    decides), negatives, zero, float sums, texts, and what an order's path passes in."""
    rng = random.Random(seed)
    found: list[float | str] = [0.0, -0.0, 0.011 - 0.005, 0.1 + 0.2, 60000.0, 57123.456789,
                                0.0123456, 59700.04999, 1e-05, 123456789.123456789, "61000",
                                "0.0050", "1e-05", 0.005 * (1 + 1e-9), -12.345]
    for _ in range(1500):
        found.append(rng.uniform(0, 10) ** rng.uniform(-6, 6) * rng.choice((1, 1, 1, -1)))
        steps = rng.randint(0, 10**6)
        for offset in (0.0, 0.5, 0.4999999999, 0.5000000001, 1e-9, -1e-9):
            found.append((steps + offset) * tick)
        found.append(round(rng.uniform(0, 100_000), rng.randint(0, 9)))
    return found


def outcome(fn, *args) -> str:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - the same failure is part of "the same"
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("tick", TICK_SIZES)
def test_every_value_is_written_as_ccxt_writes_it(venue, tmp_path, keys, tick):
    exchange = make_ccxt_client(live_settings(tmp_path), keys, venue.base_url, rate_limit=False)
    exchange.load_markets()
    rounding = TickRounding(exchange)
    market = exchange.market(SYMBOL)
    for kind in ("amount", "price"):
        market["precision"] = {**market["precision"], kind: tick}
        ours, ccxts = getattr(rounding, kind), getattr(exchange, f"{kind}_to_precision")
        for value in values(TICK_SIZES.index(tick) * 2 + (kind == "price"), float(tick)):
            assert outcome(ours, SYMBOL, value) == outcome(ccxts, SYMBOL, value), (kind, tick,
                                                                                  value)


def test_a_value_under_one_lot_and_an_unknown_market_fail_as_in_ccxt(venue, tmp_path, keys):
    exchange = make_ccxt_client(live_settings(tmp_path), keys, venue.base_url, rate_limit=False)
    exchange.load_markets()
    rounding = TickRounding(exchange)
    with pytest.raises(ccxt.InvalidOrder, match="must be greater than minimum amount precision"):
        rounding.amount(SYMBOL, 0.0009)
    with pytest.raises(ccxt.BadSymbol):
        rounding.price("NOPE/USDT:USDT", 1.0)
    assert rounding.amount(SYMBOL, 0.0123456) == "0.012"
    assert rounding.price(SYMBOL, 57123.456789) == exchange.price_to_precision(SYMBOL,
                                                                              57123.456789)
