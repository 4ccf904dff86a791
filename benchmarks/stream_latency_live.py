"""Closed candle to order accepted, through the whole live stack on 127.0.0.1.

The real Binance 5m candles of data/btc_2024-08_crash are replayed over a loopback websocket
(cryptobot's ReplayVenue), parsed by the live stream parser, handled by the engine, and traded
by `LiveBroker` through ccxt against the fake Binance order server of tests/live (its REST on
127.0.0.1, in this process), all composed by `run_live_session` as `cryptobot live` does.

A closed candle is stamped once the fake venue has walked its price through it (the venue's
own work is not the bot's), right before the engine gets it; an order is stamped when the
venue's answer accepting it is back in the broker (`report_order(..., "open")`). Each order's
latency is the time from the last closed candle to its acceptance: an entry, and the stop and
targets sent on its fills. Sessions over the window repeat, each on a fresh venue and store,
until `min_orders` were accepted.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptobot.brokers.live.broker import LiveBroker  # noqa: E402
from cryptobot.secrets import ApiKeys  # noqa: E402
from tests.live import loopback_live  # noqa: E402
from tests.live.conftest import TEST_KEY, TEST_SECRET  # noqa: E402
from tests.live.fake_binance import FakeBinanceServer  # noqa: E402
from tests.live.fake_binance_state import FakeExchangeState  # noqa: E402

START, END = "2024-07-29T00:00:00Z", "2024-08-19T00:00:00Z"
STRATEGY = "strategies.capitulation_wick:CapitulationWick"


def live_latencies_us(min_orders: int = 1000) -> tuple[dict[str, list[float]], int]:
    """Latencies (µs) of at least `min_orders` accepted orders by purpose (entry, stop, tp1...),
    and how many sessions ran."""
    last_candle_ns = [0]
    latencies: dict[tuple[int, str], tuple[str, float]] = {}  # by (session, client id)
    sessions = 0
    walk = loopback_live.walk_venue_through
    report = LiveBroker.report_order

    def walked(state, candle) -> None:
        walk(state, candle)
        last_candle_ns[0] = time.perf_counter_ns()

    def reported(self, intent, status, detail="", filled_qty=None) -> None:
        if status == "open" and (sessions, intent.client_id) not in latencies:
            latencies[sessions, intent.client_id] = (str(intent.purpose),
                                           (time.perf_counter_ns() - last_candle_ns[0]) / 1000)
        report(self, intent, status, detail, filled_qty)

    loopback_live.walk_venue_through = walked
    LiveBroker.report_order = reported
    try:
        while len(latencies) < min_orders:
            sessions += 1
            before = len(latencies)
            with tempfile.TemporaryDirectory(prefix="latency-") as folder:
                _one_session(Path(folder), sessions)
            if len(latencies) == before:
                raise RuntimeError("a whole session accepted no order")
    finally:
        loopback_live.walk_venue_through = walk
        LiveBroker.report_order = report
    by_purpose: dict[str, list[float]] = {}
    for purpose, latency_us in latencies.values():
        by_purpose.setdefault(purpose, []).append(latency_us)
    return by_purpose, sessions


def _one_session(folder: Path, session: int) -> None:
    path = loopback_live.write_live_config(folder)
    path.write_text(path.read_text().replace(
        "[strategy.params]\noi_confirmation = false\n", f'[strategy]\npath = "{STRATEGY}"\n'))
    settings = loopback_live.settings_from(path)
    window = loopback_live.load_window(settings, START, END)
    server = FakeBinanceServer(FakeExchangeState([window.price_before],
                                                 now_ms=window.start_ms)).start()
    try:
        asyncio.run(loopback_live.run_loopback_session(
            settings, ApiKeys(key=TEST_KEY, secret=TEST_SECRET), window, server))
    finally:
        server.stop()


if __name__ == "__main__":
    started = time.perf_counter()
    found, runs = live_latencies_us(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
    for purpose, values in found.items():
        values.sort()
        print(purpose, len(values), runs, values[len(values) // 2],
              values[int(0.99 * len(values))], f"{time.perf_counter() - started:.1f}s")
