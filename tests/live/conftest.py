"""Fixtures for the live broker tests: the fake Binance USD-M server and settings pointing at it."""

from __future__ import annotations

import pytest

from cryptobot.config import Settings
from cryptobot.secrets import ApiKeys
from tests.live.fake_binance import FakeBinanceServer, FaultPlan
from tests.live.fake_binance_state import FakeExchangeState, VenueClock

__all__ = ["VenueClock", "live_settings"]

TEST_KEY = "LIVETESTKEY-9f8e7d6c5b4a"
TEST_SECRET = "LIVETESTSECRET-0a1b2c3d4e5f6789"

PRICE_PATH_SCRIPTED = [60000.0, 60500.0, 61500.0, 62600.0, 61000.0, 59900.0, 64100.0]


@pytest.fixture
def venue():
    state = FakeExchangeState(PRICE_PATH_SCRIPTED)
    server = FakeBinanceServer(state, FaultPlan()).start()
    yield server
    server.stop()


@pytest.fixture
def two_markets():
    """The fake venue serving BTCUSDT (60,000) and ETHUSDT (2,500)."""
    state = FakeExchangeState(PRICE_PATH_SCRIPTED, other_prices={"ETHUSDT": 2500.0})
    server = FakeBinanceServer(state, FaultPlan()).start()
    yield server
    server.stop()


def live_settings(tmp_path, **live) -> Settings:
    base = Settings()
    values = {"request_timeout_ms": 400, "retry_base_delay_s": 0.0, **live}
    return base.model_copy(update={
        "live": base.live.model_copy(update=values),
        # the live state is in the store; logs/ is the test's own, so that no live_state.sqlite
        # an older bot left in the checkout's logs/ is imported (and renamed) by a test
        "store": base.store.model_copy(update={"url": f"sqlite:///{tmp_path / 'live.sqlite'}"}),
        "logging": base.logging.model_copy(update={"dir": str(tmp_path / "logs")}),
        "risk": base.risk.model_copy(update={"kill_switch_file": str(tmp_path / "KILL")}),
    })


@pytest.fixture
def keys() -> ApiKeys:
    return ApiKeys(key=TEST_KEY, secret=TEST_SECRET)
