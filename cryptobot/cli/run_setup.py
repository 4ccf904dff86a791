"""What the run commands (backtest, paper, live) set up alike: times, the store, the logs.

Kept light (no pandas, ccxt or SQLAlchemy at import) so that `cryptobot --help` stays fast.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cryptobot.clock import DAY_MS, Clock, iso_utc, parse_utc
from cryptobot.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from rich.console import Console

    from cryptobot.config import Settings
    from cryptobot.data import MarketData


def utc_option(text: str | None, option: str, whole_day: bool = False) -> int | None:
    """A --from/--to value in epoch ms; with `whole_day`, a bare date means its end."""
    if text is None:
        return None
    try:
        ts_ms = parse_utc(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a UTC date like 2024-08-01") from None
    return ts_ms + DAY_MS if whole_day and len(text.strip()) <= 10 else ts_ms


def trading_span(start: str | None, end: str | None) -> tuple[int | None, int | None]:
    """--from (inclusive) and --to (inclusive; a bare date is the whole day), checked."""
    start_ms, end_ms = utc_option(start, "--from"), utc_option(end, "--to", whole_day=True)
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise ConfigError(f"--to {end} is not after --from {start}")
    return start_ms, end_ms


def symbol_list(text: str, option: str = "--symbol") -> tuple[str, ...]:
    """'BTC/USDT:USDT,ETH/USDT:USDT' -> both, in order; an empty item or a market named twice
    (also as 'BTCUSDT' beside 'BTC/USDT:USDT') is a ConfigError naming the option."""
    from cryptobot.exchange.symbols import market_id

    symbols = tuple(item.strip() for item in text.split(","))
    if any(not item for item in symbols):
        raise ConfigError(f"{option} {text!r}: an empty item; give symbols separated by single "
                          "commas, e.g. BTC/USDT:USDT,ETH/USDT:USDT")
    ids = [market_id(item) for item in symbols]
    twice = next((s for s, i in zip(symbols, ids, strict=True) if ids.count(i) > 1), None)
    if twice is not None:
        raise ConfigError(f"{option} {text!r}: {market_id(twice)} is listed twice")
    return symbols


def with_symbols(settings: Settings, symbols: str | None) -> Settings:
    """The settings with --symbol (if given: one ccxt symbol, or several, comma-separated) as
    the symbols the run watches."""
    if symbols is None:
        return settings
    return settings.with_symbols(symbol_list(symbols))


DEFAULT_CONFIG = Path("config/default.toml")


def settings_or_defaults(config: Path | None) -> Settings:
    """`config`'s settings; without one, config/default.toml's, or outside a checkout the
    built-in defaults (which that file is)."""
    from cryptobot.config import Settings, load_settings

    if config is None and not DEFAULT_CONFIG.is_file():
        return Settings()
    return load_settings(config or DEFAULT_CONFIG)


def store_url(settings: Settings, db: str | None) -> str:
    """--db or the config's store; a relative SQLite file gets its folder made."""
    url = db or settings.store.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        folder = Path(url.removeprefix("sqlite:///")).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{folder}: cannot create the database folder: "
                             f"{exc.strerror or exc}") from None
    return url


def start_logging(settings: Settings, clock: Clock, simulated: bool) -> Path:
    """JSON lines to the config's log folder, stamped with the run's clock; a simulated run's
    lines also carry the wall-clock time they were written."""
    from cryptobot.clock import LiveClock
    from cryptobot.logs import configure_run_logging

    return configure_run_logging(settings, clock.now_ms, LiveClock() if simulated else None)


def warmup_shortfall(market: MarketData, start_ms: int | None, warmup_days: int) -> str | None:
    """A note when the data holds less than `warmup_days` before --from, else None."""
    from cryptobot.data.timeframes import format_duration

    if start_ms is None or market.candles.empty:
        return None
    first_ms = int(market.candles["ts_open_ms"][0])
    if first_ms <= start_ms - warmup_days * DAY_MS:
        return None
    have_ms = max(0, start_ms - first_ms)
    return (f"warm-up short: {format_duration(have_ms) if have_ms else 'nothing'} of the "
            f"{warmup_days}d wanted before {iso_utc(start_ms)} (data starts "
            f"{iso_utc(first_ms)}); the indicators start with less history")


def table_console() -> Console:
    """Where the review tables print: 200 columns whatever the terminal or pipe, so no figure
    is cut to an ellipsis (`runs`, `trades`, `signals`, `sweeps`, `sweep`)."""
    from rich.console import Console

    return Console(width=200, soft_wrap=False)


@contextmanager
def heap_frozen(collect_first: bool = False) -> Iterator[None]:
    """Everything allocated so far (modules, market data, settings; live: ccxt's markets and
    the warm-up) outlives the run: frozen, the cyclic collector's passes during the run do not
    walk it (a full pass over that heap costs ~0.1 s, inside a backtest's run or between a
    live trigger and its order). `collect_first`: collect the garbage before freezing it (live,
    once; a backtest's whole process would pay for it). Unfrozen after, for what follows."""
    if collect_first:
        gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
