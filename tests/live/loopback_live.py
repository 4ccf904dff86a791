"""A whole live session on 127.0.0.1: the replayed Binance market stream and REST (real 5m
candles of data/btc_2024-08_crash, with its SYNTHETIC open interest; or, for several symbols,
the real BTC and ETH 15m candles of data/btc_eth_2024-08_15m) beside the fake Binance order
server, driven through the same composition function `cryptobot live` runs.

The fake order venue's price follows the stream: before the engine handles a candle, the venue
walks through that candle (open, then the nearer extreme, the other extreme, close, in small
steps), so resting stops and targets trigger inside the candle, as on the exchange; with several
symbols, through every symbol's candle of that close at once, step by step in turn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from cryptobot.cli.live_run import LiveOutcome, LiveVenue, run_live_session
from cryptobot.clock import SimClock, parse_utc
from cryptobot.config import Settings, load_settings
from cryptobot.data import load_market_data
from cryptobot.exchange.replay import CandleColumns, ReplayVenue
from cryptobot.exchange.symbols import market_id
from cryptobot.model import Candle
from cryptobot.runners.stream_session import advance_sim_clock
from tests.conftest import DATA_DIR, REPO_ROOT
from tests.live.fake_binance_state import FakeExchangeState, VenueClock

SYMBOL = "BTC/USDT:USDT"
CRASH_DIR = DATA_DIR / "btc_2024-08_crash"
TWO_SYMBOL_DIR = DATA_DIR / "btc_eth_2024-08_15m"  # real Binance BTC and ETH 15m candles
STEPS_PER_LEG = 8


def write_live_config(tmp_path: Path, **sections: dict[str, object]) -> Path:
    """live.example.toml, pointed at tmp_path, on 5m candles, OI confirmation OFF (the bundled
    OI is synthetic and rejects every spike of the window), reconciling hourly."""
    values: dict[str, dict[str, object]] = {
        "market": {"base_timeframe": "5m"},
        "strategy.params": {"oi_confirmation": False},
        "logging": {"dir": str(tmp_path / "logs")},
        "risk": {"kill_switch_file": str(tmp_path / "KILL")},
        "store": {"url": f"sqlite:///{tmp_path / 'live.sqlite'}"},
        "feed": {"reconnect_min_backoff_s": 0.001, "reconnect_max_backoff_s": 0.01},
        "macro": {"use_fred": False},  # a 2024 replay: the bundled snapshot, no network
        "live": {"demo_trading": False, "request_timeout_ms": 2000, "reconcile_interval_s": 3600.0,
                 "retry_base_delay_s": 0.0},
    }
    for name, update in sections.items():
        values.setdefault(name, {}).update(update)
    lines = [f'extends = "{REPO_ROOT / "config" / "live.example.toml"}"']
    for name, keys in values.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml(value)}" for key, value in keys.items()]
    path = tmp_path / "live.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return repr(value)


def walk_venue_through(state: FakeExchangeState, candle: Candle) -> None:
    """Move the fake venue's price through one candle; its clock ends at the candle's close."""
    state.walk_candle(candle.ts_open_ms, candle.ts_close_ms, candle.open, candle.high,
                      candle.low, candle.close, steps_per_leg=STEPS_PER_LEG)


def walk_venue_through_all(state: FakeExchangeState, window: LoopbackWindow,
                           ts_close_ms: int) -> None:
    """Every symbol's candle closing at `ts_close_ms`, walked together (walk_candles)."""
    closing = {market: by_close[ts_close_ms] for market, by_close in window.candles.items()
               if ts_close_ms in by_close}
    first = next(iter(closing.values()))
    state.walk_candles(first.ts_open_ms, ts_close_ms,
                       {market: (c.open, c.high, c.low, c.close) for market, c in closing.items()},
                       steps_per_leg=STEPS_PER_LEG)


@dataclass
class LoopbackWindow:
    """`market`, `candles_by_close` and `price_before` are the first symbol's; `markets`,
    `candles` and `prices_before` every symbol's, by venue market id (BTCUSDT, ETHUSDT)."""

    market: object
    start_ms: int
    end_ms: int
    candles_by_close: dict[int, Candle]
    price_before: float
    markets: list = field(default_factory=list)
    candles: dict[str, dict[int, Candle]] = field(default_factory=dict)
    prices_before: dict[str, float] = field(default_factory=dict)

    def other_prices(self) -> dict[str, float]:
        """The other symbols' last prices before the window (the fake venue's first ones)."""
        return dict(list(self.prices_before.items())[1:])


def load_window(settings: Settings, start: str, end: str) -> LoopbackWindow:
    """The settings' symbols over [start, end): the crash window's 5m BTC for one symbol, the
    BTC/ETH 15m folder for several."""
    start_ms, end_ms = parse_utc(start), parse_utc(end)
    symbols = settings.market.symbols
    folder = CRASH_DIR if len(symbols) == 1 else TWO_SYMBOL_DIR
    markets, candles, before = [], {}, {}
    for symbol in symbols:
        market = load_market_data(folder, symbol,
                                  start_ms - settings.feed.warmup_days * 86_400_000, end_ms,
                                  exchange="binanceusdm")
        rows = list(CandleColumns.from_frame(market.candles, market.base_interval_ms))
        markets.append(market)
        candles[market_id(symbol)] = {c.ts_close_ms: c for c in rows if c.ts_open_ms >= start_ms}
        before[market_id(symbol)] = [c for c in rows if c.ts_close_ms <= start_ms][-1].close
    first = market_id(symbols[0])
    return LoopbackWindow(markets[0], start_ms, end_ms, candles[first], before[first], markets,
                          candles, before)


def kill_switch_at(window: LoopbackWindow, kill_at_ms: int, path: Path) -> None:
    """Have the loopback write the kill-switch file `path` once the stream reaches
    `kill_at_ms` (before the venue walks that candle)."""
    walk = window.candles_by_close

    class KillAt(dict):
        def get(self, ts_ms, default=None):
            if ts_ms >= kill_at_ms:
                path.write_text("")
            return walk.get(ts_ms, default)

    window.candles_by_close = KillAt()


async def run_loopback_session(settings: Settings, keys, window: LoopbackWindow,
                               order_server, frame_delay_ms: int = 0) -> tuple[LiveOutcome, str]:
    """Stream the window through `run_live_session`; returns the outcome and what it printed.
    `order_server`: a FakeBinanceServer (walked here), or a FakeBinanceProcess (a venue in a
    process of its own, walked over its control routes; one symbol). `frame_delay_ms`: each
    closing frame that long after its candle's close, as a live venue sends it (ReplayVenue)."""
    engine_clock = SimClock(window.start_ms)
    advance = advance_sim_clock(engine_clock)
    state = getattr(order_server, "state", None)
    # the broker's waits pass on the venue's clock
    venue_clock = order_server if state is None else VenueClock(state)

    def advance_and_walk(ts_ms: int) -> None:
        candle = window.candles_by_close.get(ts_ms)
        if candle is not None and ts_ms > venue_clock.now_ms():
            if state is None:
                order_server.walk_candle(candle)
            elif len(window.candles) > 1:
                walk_venue_through_all(state, window, ts_ms)
            else:
                walk_venue_through(state, candle)
        advance(ts_ms)

    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    async with ReplayVenue(window.markets or [window.market], window.start_ms,
                           window.end_ms, frame_delay_ms=frame_delay_ms) as replay:
        venue = LiveVenue(engine_clock, advance_and_walk, feed_clock=replay.clock,
                          exchange_time=replay.time_driver(), market_rest_url=replay.rest_url,
                          ws_url=replay.ws_url, orders_rest_url=order_server.base_url,
                          user_stream_url=order_server.user_stream_url,
                          rate_limit=False, sleep=venue_clock.sleep, wait_clock=venue_clock,
                          kill_check_s=0.2, until_ms=window.end_ms)
        outcome = await run_live_session(settings, keys, venue, console,
                                         settings.store.url, heartbeat=True)
    return outcome, out.getvalue()


def settings_from(path: Path) -> Settings:
    return load_settings(path)
