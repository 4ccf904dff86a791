"""The real live stack on a hostile venue: 20% of private calls fail (rate limits, 5xx,
timeouts before and after the work, errors after an accepted order; a ban only for a bot that
sends inside a Retry-After) and every taker fill comes in three parts, over the bundled crash
data's 2024-08-04 trade (OI confirmation off: the window's OI is SYNTHETIC). The same code as
benchmarks/live_faults.py, without kills: no order reaches the venue twice, none is lost
between the venue and the store, the store's fills and trade PnL equal the venue's, and no
request went out inside a wait the venue asked for.
"""

from __future__ import annotations

import random

from benchmarks.live_fault_episodes import (
    NO_KILLS,
    Chunk,
    VenueOptions,
    audit,
    crash_candles,
    run_episode,
)
from cryptobot.clock import parse_utc

START, END = "2024-08-04T16:00:00Z", "2024-08-04T22:00:00Z"
SIGNAL = "BTCUSDT-20240804T1730"  # entered 18:15 with TP1 and TP2


def test_faults_on_20_percent_of_calls_and_split_fills_lose_and_double_nothing(tmp_path):
    chunk = Chunk(SIGNAL, parse_utc(START), parse_utc(END), 0, 0, ("tp1", "tp2"))
    options = VenueOptions(error_rate=0.2, partial_fills=True, segment_timeout_s=180)
    episode = run_episode(chunk, tmp_path, crash_candles(), options, 0, NO_KILLS,
                          random.Random(20))
    try:
        result = audit(episode)
        fills = len(episode.venue.state.trades)
    finally:
        episode.venue.stop()
    injected = result["faults_injected"]
    print("faults injected:", injected, "venue trades:", fills)
    assert result["errors"] == [], result["errors"]
    assert sum(injected.values()) >= 5
    assert injected.keys() & {"timeout_after", "502_after", "1007", "503_unknown"}  # done?
    assert result["entries_on_venue"] == [f"{SIGNAL}-entry"]
    assert fills >= 4  # the entry alone came in three parts
    assert result["duplicates"] == {}, result["duplicates"]
    assert result["lost"] == {"venue_not_stored": [], "stored_not_on_venue": []}, result["lost"]
    assert result["journal"] == [], result["journal"]
    assert result["trades_on_venue"] == result["trades_stored"] == 1
    assert (result["early_requests"], result["bans"]) == (0, 0)  # every Retry-After obeyed
