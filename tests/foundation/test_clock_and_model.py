import random
from datetime import UTC, datetime

import pytest

from cryptobot.clock import SimClock, iso_utc, parse_utc, utc_day_start_ms
from cryptobot.model import Side, Trade, TradeLeg


def test_sim_clock_never_goes_back():
    clock = SimClock(1_000)
    clock.advance_to(2_000)
    assert clock.now_ms() == 2_000
    with pytest.raises(ValueError):
        clock.advance_to(1_999)


def test_time_text_round_trip():
    assert iso_utc(parse_utc("2025-10-10T21:15:00Z")) == "2025-10-10T21:15:00Z"
    assert parse_utc("2024-08-05") == 1_722_816_000_000
    assert parse_utc("2024-08-05T02:00:00+02:00") == 1_722_816_000_000
    assert utc_day_start_ms(parse_utc("2024-08-05T23:59:59Z")) == 1_722_816_000_000


def test_iso_utc_is_the_datetime_text_everywhere():
    # Formatted from time.gmtime inside datetime's range; datetime's own text is the reference.
    rng = random.Random(20)
    edges = [0, 999, 1_000, 1_722_816_000_000 - 1, 1_722_816_000_000, 253_402_300_799_999, -1,
             -500, -62_135_596_800_000, 1_700_000_000_999.0]
    for ts_ms in edges + [rng.randrange(-10**13, 253_402_300_800_000) for _ in range(20_000)]:
        expected = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert iso_utc(ts_ms) == expected, ts_ms
    with pytest.raises((ValueError, OverflowError)):
        iso_utc(253_402_300_800_000)  # year 10000: out of range as before


def test_trade_arithmetic_by_hand():
    # 0.2 BTC long at 50,000, stop 49,000 (R = 1,000/BTC, risk 200 USDT).
    # Half sold at 51,000 (TP1), half at 50,000 (break-even stop).
    trade = Trade(
        signal_id="s1", symbol="BTC/USDT:USDT", side=Side.BUY, entry_ms=0, entry_price=50_000.0,
        qty_base=0.2, initial_stop=49_000.0, entry_fee_usdt=5.0,
        legs=(
            TradeLeg(ts_ms=1, price=51_000.0, qty_base=0.1, fee_usdt=1.02, reason="tp1"),
            TradeLeg(ts_ms=2, price=50_000.0, qty_base=0.1, fee_usdt=2.5, reason="breakeven_stop"),
        ),
    )
    assert trade.exit_price == pytest.approx(50_500.0)
    assert trade.fees_usdt == pytest.approx(8.52)
    assert trade.pnl_usdt == pytest.approx(100.0 - 8.52)
    assert trade.r_multiple == pytest.approx((100.0 - 8.52) / 200.0)
    assert trade.exit_reason == "breakeven_stop" and trade.exit_ms == 2
