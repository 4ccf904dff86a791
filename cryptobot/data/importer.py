"""`cryptobot data import`: read every file first, then merge into the store.

A bad file stops the import before anything is written, so what is stored stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cryptobot.data.frames import find_gaps, merge_frames
from cryptobot.data.market_store import MarketStore, StoredSeries
from cryptobot.data.markets import check_market
from cryptobot.data.readers import CANDLES, ParsedFile, read_market_file
from cryptobot.errors import DataError


@dataclass(frozen=True)
class ImportResult:
    series: StoredSeries
    rows_read: int
    rows_added: int
    gaps: tuple[tuple[int, int], ...]  # candles only: holes in what is now stored


def read_files(paths: Iterable[str | Path]) -> list[ParsedFile]:
    parsed = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            raise DataError(f"{path}: is a folder; pass its files (e.g. {path}/*)")
        parsed.append(read_market_file(path))
    return parsed


def import_files(store: MarketStore, exchange: str, symbol: str,
                 paths: Iterable[str | Path]) -> list[ImportResult]:
    parsed = read_files(paths)
    if not parsed:
        raise DataError("no files to import")
    for item in parsed:
        check_market(item.market, item.where, symbol)
    groups: dict[tuple[str, int | None], list[ParsedFile]] = {}
    for item in parsed:
        groups.setdefault((item.kind, item.interval_ms), []).append(item)
    results = []
    for (kind, interval_ms), items in groups.items():
        time_column = items[0].frame.columns[0]
        frame = merge_frames([p.frame for p in items], time_column)
        spans = {p.source: source_span(p) for p in items if len(p.frame)}
        results.append(write_series(store, exchange, symbol, kind, frame,
                                    tuple(p.source for p in items), interval_ms, spans))
    return results


def source_span(parsed: ParsedFile) -> tuple[int, int]:
    """(first, last) time of a file's rows."""
    ts = parsed.frame.iloc[:, 0]
    return int(ts.iloc[0]), int(ts.iloc[-1])


def write_series(store: MarketStore, exchange: str, symbol: str, kind: str, frame: pd.DataFrame,
                 sources: tuple[str, ...], interval_ms: int | None,
                 source_spans: dict[str, tuple[int, int]] | None = None) -> ImportResult:
    before = store.read(exchange, symbol, kind, interval_ms)
    count_before = 0 if before is None else len(before.frame)
    series = store.append(exchange, symbol, kind, frame, sources, interval_ms, source_spans)
    gaps = find_gaps(series.frame["ts_open_ms"].to_numpy(), interval_ms) \
        if kind == CANDLES and interval_ms else ()
    return ImportResult(series, len(frame), len(series.frame) - count_before, gaps)
