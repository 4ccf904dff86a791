"""`cryptobot data import`: read every file first, then merge into the store.

A bad file stops the import before anything is written, so what is stored stays as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptobot.clock import Clock, LiveClock
from cryptobot.data.frames import find_gaps, merge_frames
from cryptobot.data.market_store import MarketStore, StoredSeries
from cryptobot.data.markets import check_market
from cryptobot.data.readers import CANDLES, DATA_SUFFIXES, ParsedFile, read_market_file
from cryptobot.data.table import Table
from cryptobot.errors import DataError


@dataclass(frozen=True)
class ImportResult:
    series: StoredSeries
    rows_read: int
    rows_added: int
    gaps: tuple[tuple[int, int], ...]  # candles only: holes in what is now stored


# Notes that travel with data (a folder's README, a licence) are no data, whatever their suffix.
_NOTE_NAMES = ("readme", "license", "licence", "copying", "notice", "changelog")


def data_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(files to read, [(file, why skipped)]): a folder stands for the files in it (not its
    subfolders); notes (README.md, *.md, licences, hidden files) are skipped, not errors."""
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for path in (Path(p) for p in paths):
        inside = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for item in inside:
            reason = _not_data(item)
            if reason is None:
                files.append(item)
            else:
                skipped.append((item, reason))
    return files, skipped


def _not_data(path: Path) -> str | None:
    """Why `path` is no data file (None if it may be one: its content decides)."""
    if path.name.startswith("."):
        return "a hidden file"
    if path.name.lower().startswith(_NOTE_NAMES):
        return "a note, not data"
    if path.suffix.lower() not in DATA_SUFFIXES:
        return f"not a data file ({', '.join(sorted(DATA_SUFFIXES))})"
    return None


def read_files(paths: Iterable[str | Path], now_ms: int | None = None) -> list[ParsedFile]:
    """Every data file among `paths`, read and validated (see `data_files`); with `now_ms`, a
    candle from after it is an error."""
    return [read_market_file(path, now_ms) for path in data_files(paths)[0]]


def import_files(store: MarketStore, exchange: str, symbol: str,
                 paths: Iterable[str | Path], clock: Clock | None = None) -> list[ImportResult]:
    """Read every file (a candle from after `clock`, the wall clock by default, is an error),
    then merge them into the store."""
    parsed = read_files(paths, (clock or LiveClock()).now_ms())
    if not parsed:
        raise DataError("no data files to import")
    for item in parsed:
        check_market(item.market, item.where, symbol)
    groups: dict[tuple[str, int | None], list[ParsedFile]] = {}
    for item in parsed:
        groups.setdefault((item.kind, item.interval_ms), []).append(item)
    results = []
    for (kind, interval_ms), items in groups.items():
        frame = merge_frames([p.frame for p in items])
        spans = {p.source: source_span(p) for p in items if len(p.frame)}
        results.append(write_series(store, exchange, symbol, kind, frame,
                                    tuple(p.source for p in items), interval_ms, spans))
    return results


def source_span(parsed: ParsedFile) -> tuple[int, int]:
    """(first, last) time of a file's rows."""
    ts = parsed.frame.time()
    return int(ts[0]), int(ts[-1])


def write_series(store: MarketStore, exchange: str, symbol: str, kind: str, frame: Table,
                 sources: tuple[str, ...], interval_ms: int | None,
                 source_spans: dict[str, tuple[int, int]] | None = None) -> ImportResult:
    before = store.read(exchange, symbol, kind, interval_ms)
    count_before = 0 if before is None else len(before.frame)
    series = store.append(exchange, symbol, kind, frame, sources, interval_ms, source_spans)
    gaps = find_gaps(series.frame["ts_open_ms"], interval_ms) \
        if kind == CANDLES and interval_ms else ()
    return ImportResult(series, len(frame), len(series.frame) - count_before, gaps)
