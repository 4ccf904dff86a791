"""`load_market_data` / `load_markets`: what a backtest or replay reads, from a store or a
plain folder (of one market or several)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryptobot.clock import Clock, LiveClock, iso_utc
from cryptobot.data.frames import (
    MAX_SILENT_GAP_MS,
    empty_funding,
    empty_open_interest,
    find_gaps,
    merge_frames,
    uncovered_edges,
)
from cryptobot.data.market_store import MarketStore
from cryptobot.data.markets import check_market, files_by_market, files_of_market
from cryptobot.data.readers import (
    CANDLES,
    DATA_SUFFIXES,
    FUNDING,
    OPEN_INTEREST,
    ParsedFile,
    read_market_file,
)
from cryptobot.data.table import Table
from cryptobot.data.timeframes import format_duration, ms_to_timeframe
from cryptobot.errors import DataError, GapError
from cryptobot.exchange.symbols import market_id

SYNTHETIC_MARK = "SYNTHETIC"


@dataclass(frozen=True)
class MarketData:
    exchange: str
    symbol: str
    candles: Table  # base timeframe: ts_open_ms, open, high, low, close, volume
    base_interval_ms: int
    open_interest: Table  # ts_ms, oi_contracts, oi_value_usdt (maybe empty)
    funding: Table  # ts_ms, rate (maybe empty)
    oi_synthetic: bool
    sources: tuple[str, ...]  # names of the files whose rows were loaded; SYNTHETIC marks some
    gaps: tuple[tuple[int, int], ...]  # (first missing open time, next present open time)
    # Parts of the requested span before the first or after the last candle, (from, to).
    uncovered: tuple[tuple[int, int], ...] = ()
    funding_sources: tuple[str, ...] = ()  # the sources of the funding rows (summaries say it)

    @property
    def is_synthetic(self) -> bool:
        return any(SYNTHETIC_MARK in source for source in self.sources)

    def describe(self) -> str:
        """One line for summaries: span, timeframe, OI, funding, gaps, SYNTHETIC."""
        if self.candles.empty:
            return f"{self.exchange} {self.symbol}: no candles"
        ts = self.candles["ts_open_ms"]
        oi = "no OI" if self.open_interest.empty else f"{len(self.open_interest)} OI samples"
        if self.oi_synthetic:
            oi += " (SYNTHETIC)"
        gaps = ", ".join(f"{iso_utc(a)} +{format_duration(b - a)}" for a, b in self.gaps)
        uncovered = "".join(f", no candles {iso_utc(a)} .. {iso_utc(b)} ({format_duration(b - a)})"
                            for a, b in self.uncovered)
        return (f"{self.exchange} {self.symbol} {ms_to_timeframe(self.base_interval_ms)} "
                f"{iso_utc(int(ts[0]))} .. {iso_utc(int(ts[-1]))}, "
                f"{len(self.candles)} candles, {oi}, {len(self.funding)} funding rates, "
                f"gaps: {gaps or 'none'}{uncovered}")


def load_market_data(path: str | Path, symbol: str, start_ms: int | None = None,
                     end_ms: int | None = None, allow_gaps: bool = False,
                     exchange: str = "binanceusdm", warmup_ms: int | None = None,
                     clock: Clock | None = None) -> MarketData:
    """Candles, OI and funding for one market, cut to [start_ms, end_ms) by candle open time.

    `path` is a store written by `cryptobot data import/download`, a plain folder of files in any
    layout the readers know, or one such file. A folder or store may hold several markets: the
    files of `symbol` are used, the others ignored (`markets.files_by_market` says which file
    holds which market); a lone file that names another market than `symbol` is a DataError.

    A hole longer than an hour inside the span raises GapError unless `allow_gaps`, and so does
    a span that starts more than an hour before the first candle or ends more than an hour
    after the last one; shorter ones are reported.

    With `warmup_ms`, `start_ms` is where trading starts: candles load from `start_ms -
    warmup_ms`, and a missing warm-up is reported (`uncovered`), not an error. Without it
    (None), `start_ms` already includes any warm-up, so a missing start is reported only.

    A file holding a candle from the future (after `clock`, the wall clock by default: data can
    never be newer than now, whatever the run's own clock) is a DataError.
    """
    return load_markets(path, (symbol,), start_ms, end_ms, allow_gaps, exchange, warmup_ms,
                        clock)[symbol]


def load_markets(path: str | Path, symbols: Sequence[str], start_ms: int | None = None,
                 end_ms: int | None = None, allow_gaps: bool = False,
                 exchange: str = "binanceusdm", warmup_ms: int | None = None,
                 clock: Clock | None = None) -> dict[str, MarketData]:
    """`load_market_data` for each of `symbols` (keyed as given, in their order), reading a
    folder's files once; one symbol's missing data or long gap fails the whole call."""
    path = Path(path)
    ids = [market_id(s) for s in symbols]
    twice = [s for s, i in zip(symbols, ids, strict=True) if ids.count(i) > 1]
    if twice:
        raise DataError(f"{market_id(twice[0])} asked for twice ({', '.join(twice)}): "
                        "one symbol per market")
    parts_of = _parts_reader(path, exchange, (clock or LiveClock()).now_ms())
    return {symbol: _cut_market(path, symbol, parts_of(symbol), start_ms, end_ms, allow_gaps,
                                exchange, warmup_ms)
            for symbol in symbols}


def _parts_reader(path: Path, exchange: str, now_ms: int) -> Callable[[str], _Parts]:
    """symbol -> its whole stored data, from a store, a folder (read here, once) or a file."""
    if MarketStore.is_store(path):
        store = MarketStore(path)
        return lambda symbol: _from_store(store, exchange, symbol)
    if path.is_dir():
        grouped = files_by_market(read_folder(path, now_ms), str(path))
        return lambda symbol: _from_files(files_of_market(grouped, symbol, str(path)), path,
                                          symbol)
    if path.is_file():
        parsed = read_market_file(path, now_ms)

        def from_the_file(symbol: str) -> _Parts:
            check_market(parsed.market, parsed.where, symbol)
            return _from_files([parsed], path, symbol)
        return from_the_file
    raise DataError(f"{path}: no such data folder or file")


def _cut_market(path: Path, symbol: str, parts: _Parts, start_ms: int | None,
                end_ms: int | None, allow_gaps: bool, exchange: str,
                warmup_ms: int | None) -> MarketData:
    all_candles, interval_ms, oi, funding, sources = parts
    requested_from_ms = start_ms
    required_from_ms = start_ms if warmup_ms is not None else None
    if start_ms is not None and warmup_ms:
        start_ms -= warmup_ms
    candles = _cut(all_candles, "ts_open_ms", start_ms, end_ms, keep_one_before=False)
    if candles.empty:
        raise DataError(_no_candles(path, symbol, all_candles, requested_from_ms, end_ms))
    ts_open_ms = candles["ts_open_ms"]
    gaps = find_gaps(ts_open_ms, interval_ms)
    uncovered = uncovered_edges(ts_open_ms, interval_ms, start_ms, end_ms)
    required = [*gaps, *_required_edges(ts_open_ms, interval_ms, required_from_ms, end_ms)]
    long_gaps = sorted((a, b) for a, b in required if b - a > MAX_SILENT_GAP_MS)
    if long_gaps and not allow_gaps:
        a, b = long_gaps[0]
        more = f" (and {len(long_gaps) - 1} more)" if len(long_gaps) > 1 else ""
        raise GapError(f"{path}: {symbol} candles missing for {format_duration(b - a)} from "
                       f"{iso_utc(a)} to {iso_utc(b)}{more}; pass --allow-gaps to run anyway")
    oi = _cut(oi, "ts_ms", start_ms, end_ms, keep_one_before=True)
    funding = _cut(funding, "ts_ms", start_ms, end_ms, keep_one_before=True)
    loaded = {CANDLES: candles, OPEN_INTEREST: oi, FUNDING: funding}
    used = [(name, kind) for name, kind, span in sources if _overlaps(span, loaded[kind])]
    return MarketData(
        exchange=exchange, symbol=symbol, candles=candles, base_interval_ms=interval_ms,
        open_interest=oi, funding=funding,
        oi_synthetic=any(SYNTHETIC_MARK in s for s, kind in used if kind == OPEN_INTEREST),
        sources=tuple(dict.fromkeys(s for s, _ in used)), gaps=gaps, uncovered=uncovered,
        funding_sources=tuple(dict.fromkeys(s for s, kind in used if kind == FUNDING)))


def _overlaps(span: tuple[int, int] | None, frame: Table) -> bool:
    """Whether a source's rows can be among `frame`'s (its span is unknown for old stores)."""
    if frame.empty:
        return False
    if span is None:
        return True
    ts = frame.time()
    return span[0] <= int(ts[-1]) and span[1] >= int(ts[0])


def _no_candles(path: Path, symbol: str, all_candles: Table, from_ms: int | None,
                end_ms: int | None) -> str:
    ts = all_candles["ts_open_ms"]
    held = f"{iso_utc(int(ts[0]))} .. {iso_utc(int(ts[-1]))}" if len(ts) else "none"
    return (f"{path}: no {symbol} candles in the requested span {_when(from_ms, 'the start')} .. "
            f"{_when(end_ms, 'the end')}; the data holds {held}")


def _required_edges(ts_open_ms: np.ndarray, interval_ms: int, required_from_ms: int | None,
                    end_ms: int | None) -> tuple[tuple[int, int], ...]:
    """The uncovered edges that count like gaps: not the warm-up before `required_from_ms`."""
    start_ms = None
    if required_from_ms is not None and required_from_ms < int(ts_open_ms[0]):
        start_ms = required_from_ms
    return uncovered_edges(ts_open_ms, interval_ms, start_ms, end_ms)


def _when(ts_ms: int | None, missing: str) -> str:
    return missing if ts_ms is None else iso_utc(ts_ms)


def read_folder(folder: Path, now_ms: int | None = None) -> list[ParsedFile]:
    """Every data file in a folder (not recursive); notes like README.md are skipped."""
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in DATA_SUFFIXES and p.suffix.lower() != ".txt")
    return [read_market_file(p, now_ms) for p in files]


# (name, kind, (first, last) time of its rows or None when unknown)
_Source = tuple[str, str, tuple[int, int] | None]
_Parts = tuple[Table, int, Table, Table, list[_Source]]


def _from_files(parsed: list[ParsedFile], where: Path, symbol: str) -> _Parts:
    """One market's files (already picked) merged; the finest candles are the base."""
    candle_files = [p for p in parsed if p.kind == CANDLES]
    if not candle_files:
        raise DataError(f"{where}: no candle file found for {symbol}")
    # A folder may hold several timeframes of one market: the finest is the base.
    interval_ms = min(p.interval_ms or 0 for p in candle_files)
    used = [p for p in parsed if p.kind != CANDLES or p.interval_ms == interval_ms]
    candles = merge_frames([p.frame for p in used if p.kind == CANDLES])
    oi = _merge_kind(used, OPEN_INTEREST, empty_open_interest())
    funding = _merge_kind(used, FUNDING, empty_funding())
    sources = [(p.source, p.kind, (int(p.frame.time()[0]), int(p.frame.time()[-1])))
               for p in used if len(p.frame)]
    return candles, interval_ms, oi, funding, sources


def _merge_kind(parsed: list[ParsedFile], kind: str, empty: Table) -> Table:
    frames = [p.frame for p in parsed if p.kind == kind]
    return merge_frames(frames) if frames else empty


def _from_store(store: MarketStore, exchange: str, symbol: str) -> _Parts:
    intervals = store.candle_intervals(exchange, symbol)
    if not intervals:
        stored = sorted({f"{s.exchange} {s.symbol}" for s in store.all_series()})
        raise DataError(f"{store.root}: no {exchange} {symbol} candles stored "
                        f"(stored: {', '.join(stored) or 'nothing'})")
    series = [store.read(exchange, symbol, CANDLES, intervals[0]),
              store.read(exchange, symbol, OPEN_INTEREST),
              store.read(exchange, symbol, FUNDING)]
    candles, oi, funding = series
    assert candles is not None
    sources = [(s, item.kind, item.source_spans.get(s)) for item in series if item is not None
               for s in item.sources]
    return (candles.frame, intervals[0],
            oi.frame if oi is not None else empty_open_interest(),
            funding.frame if funding is not None else empty_funding(), sources)


def _cut(frame: Table, column: str, start_ms: int | None, end_ms: int | None,
         keep_one_before: bool) -> Table:
    """Rows in [start_ms, end_ms); with keep_one_before from the last row at or before start_ms,
    so the value in force at the start is known (OI and funding)."""
    ts = frame[column]
    lo = 0 if start_ms is None else int(np.searchsorted(ts, start_ms, side="left"))
    hi = len(ts) if end_ms is None else int(np.searchsorted(ts, end_ms, side="left"))
    if keep_one_before and start_ms is not None:
        lo = max(int(np.searchsorted(ts, start_ms, side="right")) - 1, 0)
    return frame[lo:max(lo, hi)]


def cut_to_span(market: MarketData, start_ms: int, end_ms: int | None) -> MarketData:
    """`market` cut as `load_market_data` cuts a span: candles opening in [start_ms, end_ms),
    OI and funding from the sample in force at `start_ms` (walk-forward windows share one
    loaded market)."""
    return dataclasses.replace(
        market, candles=_cut(market.candles, "ts_open_ms", start_ms, end_ms, False),
        open_interest=_cut(market.open_interest, "ts_ms", start_ms, end_ms, True),
        funding=_cut(market.funding, "ts_ms", start_ms, end_ms, True))
