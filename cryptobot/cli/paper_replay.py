"""What `cryptobot paper --replay` serves: the stored data of the run's symbols (in its order),
the span it trades (cut as the backtest cuts it), and where the session may stop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptobot.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from cryptobot.config import Settings
    from cryptobot.data import MarketData

    Markets = MarketData | Sequence[MarketData] | Mapping[str, MarketData]  # one, or by symbol


def in_run_order(settings: Settings, markets: Markets) -> list[MarketData]:
    """The replayed markets in the run's symbol order."""
    from cryptobot.data import MarketData

    if isinstance(markets, MarketData):
        return [markets]
    by_symbol = dict(markets) if isinstance(markets, Mapping) else {m.symbol: m for m in markets}
    return [by_symbol[symbol] for symbol in settings.market.symbols]


def replay_window(settings: Settings, markets: Markets, start_ms: int | None,
                  end_ms: int | None) -> tuple[int, int]:
    """[start, end) a replay trades: whole signal buckets, as the backtest cuts them (from the
    first symbol's start to the last one's end)."""
    from cryptobot.data.timeframes import timeframe_to_ms
    from cryptobot.exchange.replay import replay_span

    spans = []
    for market in in_run_order(settings, markets):
        ts = market.candles["ts_open_ms"]
        spans.append(replay_span(int(ts[0]), int(ts[-1]), market.base_interval_ms,
                                 timeframe_to_ms(settings.market.signal_timeframe), start_ms,
                                 end_ms))
    return min(a for a, _ in spans), max(b for _, b in spans)


def last_closes(markets: Sequence[MarketData], stream_from: int, end: int,
                handled_open_ms: Mapping[str, int | None]) -> dict[str, int]:
    """When each symbol's last streamed candle closes: where the session may stop (the
    symbols whose last candle was handled already are left out)."""
    last = {}
    for market in markets:
        ts = market.candles["ts_open_ms"]
        streamed = ts[(ts >= stream_from) & (ts < end)]
        handled = handled_open_ms.get(market.symbol)
        if len(streamed) and (handled is None or handled < int(streamed[-1])):
            last[market.symbol] = int(streamed[-1]) + market.base_interval_ms
    return last


def one_base_interval(markets: Sequence[MarketData]) -> int:
    """The replay's one stream interval: every symbol's data must share its base timeframe."""
    from cryptobot.data.timeframes import ms_to_timeframe

    intervals = {market.symbol: market.base_interval_ms for market in markets}
    if len(set(intervals.values())) > 1:
        held = ", ".join(f"{s} {ms_to_timeframe(ms)}" for s, ms in intervals.items())
        raise ConfigError(f"--replay: the symbols' data have different base timeframes ({held}); "
                          "a replay streams one kline interval for all of them")
    return next(iter(intervals.values()))


def replay_markets(settings: Settings, replay: Path, start_ms: int | None, end_ms: int | None,
                   resumed: Any, console: Console
                   ) -> tuple[list[MarketData], str, tuple[int, int]]:
    """The stored data a replay serves (every symbol's, in the run's order), its description
    and the span it trades."""
    from cryptobot.cli.run_setup import warmup_shortfall
    from cryptobot.clock import DAY_MS
    from cryptobot.data import load_markets

    markets = list(load_markets(replay, settings.market.symbols, start_ms, end_ms,
                                exchange="binanceusdm",
                                warmup_ms=settings.feed.warmup_days * DAY_MS).values())
    one_base_interval(markets)
    sources = [source for market in markets for source in market.sources]
    source = f"{replay} ({', '.join(dict.fromkeys(sources))}) replayed over 127.0.0.1"
    run_span = replay_window(settings, markets, start_ms, end_ms)
    if resumed is not None and run_span != (resumed.info.start_ms, resumed.info.end_ms):
        raise ConfigError(f"--from/--to: run {resumed.run_id} replays another span")
    for market in markets:
        note = warmup_shortfall(market, start_ms, settings.feed.warmup_days)
        if note:
            console.print(f"[yellow]{note}[/]" if len(markets) == 1
                          else f"[yellow]{market.symbol}: {note}[/]", soft_wrap=True)
    return markets, source, run_span
