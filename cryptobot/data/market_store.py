"""The on-disk store: one Parquet file per exchange/symbol/timeframe (candles) and per
exchange/symbol (open interest, funding).

    <root>/cryptobot-store.json
    <root>/<exchange>/<BTC_USDT_USDT>/candles_1m.parquet | open_interest.parquet | funding.parquet

Appends merge with what is stored and de-duplicate by time (the newer rows win). Every write goes
to a temporary file that replaces the old one in one rename, so a failed import never leaves a
half-written file; the names of the source files, each with the time span of its rows, travel
in the Parquet metadata (so SYNTHETIC can follow the rows actually loaded).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptobot.data.arrow_columns import column_array
from cryptobot.data.defaults import DEFAULT_STORE_DIR  # noqa: F401  (re-exported)
from cryptobot.data.frames import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    OI_COLUMNS,
    RowLocator,
    merge_frames,
    validate_candles,
    validate_funding,
    validate_open_interest,
)
from cryptobot.data.readers import CANDLES, FUNDING, OPEN_INTEREST
from cryptobot.data.table import Table
from cryptobot.data.timeframes import ms_to_timeframe, timeframe_to_ms
from cryptobot.errors import DataError

MARKER = "cryptobot-store.json"
_META_KEY = b"cryptobot"
_COLUMNS = {CANDLES: CANDLE_COLUMNS, OPEN_INTEREST: OI_COLUMNS, FUNDING: FUNDING_COLUMNS}
_VALIDATORS = {CANDLES: validate_candles, OPEN_INTEREST: validate_open_interest,
               FUNDING: validate_funding}


@dataclass(frozen=True)
class StoredSeries:
    exchange: str
    symbol: str
    kind: str
    interval_ms: int | None  # candles only
    frame: Table
    sources: tuple[str, ...]
    path: Path
    # source -> (first, last) time of its rows; stores written before spans were kept lack them
    source_spans: dict[str, tuple[int, int]] = field(default_factory=dict)


def symbol_dir_name(symbol: str) -> str:
    """'BTC/USDT:USDT' -> 'BTC_USDT_USDT' (freqtrade's habit)."""
    return symbol.replace("/", "_").replace(":", "_")


class MarketStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @staticmethod
    def is_store(path: str | Path) -> bool:
        return (Path(path) / MARKER).is_file()

    def _file(self, exchange: str, symbol: str, kind: str, interval_ms: int | None) -> Path:
        folder = self.root / exchange / symbol_dir_name(symbol)
        if kind == CANDLES:
            assert interval_ms is not None
            return folder / f"candles_{ms_to_timeframe(interval_ms)}.parquet"
        return folder / f"{kind}.parquet"

    def read(self, exchange: str, symbol: str, kind: str,
             interval_ms: int | None = None) -> StoredSeries | None:
        path = self._file(exchange, symbol, kind, interval_ms)
        return self._read_path(path) if path.is_file() else None

    def _read_path(self, path: Path) -> StoredSeries:
        import pyarrow as pa  # here: a backtest on a plain folder never reads a store
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
            meta = json.loads((table.schema.metadata or {})[_META_KEY])
            kind = meta["kind"]
            columns = {name: column_array(table.column(name))
                       for name in _COLUMNS[kind]}
        except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
            raise DataError(f"{path}: unreadable store file ({exc})") from None
        frame = _VALIDATORS[kind](Table(columns), RowLocator(str(path), None))
        spans = {name: (int(a), int(b)) for name, (a, b) in meta.get("source_spans", {}).items()}
        return StoredSeries(meta["exchange"], meta["symbol"], kind, meta.get("interval_ms"),
                            frame, tuple(meta["sources"]), path, spans)

    def candle_intervals(self, exchange: str, symbol: str) -> list[int]:
        folder = self.root / exchange / symbol_dir_name(symbol)
        names = sorted(folder.glob("candles_*.parquet")) if folder.is_dir() else []
        return sorted(timeframe_to_ms(p.stem.removeprefix("candles_")) for p in names)

    def all_series(self) -> list[StoredSeries]:
        return [self._read_path(p) for p in sorted(self.root.glob("*/*/*.parquet"))]

    def append(self, exchange: str, symbol: str, kind: str, frame: Table,
               sources: tuple[str, ...], interval_ms: int | None = None,
               source_spans: dict[str, tuple[int, int]] | None = None) -> StoredSeries:
        """Merge `frame` (already validated) into what is stored; atomic replace.
        `source_spans` gives each source's (first, last) row time; default: the frame's span
        for every source."""
        path = self._file(exchange, symbol, kind, interval_ms)
        old = self.read(exchange, symbol, kind, interval_ms)
        time_column = _COLUMNS[kind][0]
        if source_spans is None and len(frame):
            ts = frame[time_column]
            source_spans = {s: (int(ts.min()), int(ts.max())) for s in sources}
        spans = dict(old.source_spans) if old is not None else {}
        for name, (first_ms, last_ms) in (source_spans or {}).items():
            if name in spans:  # the same file imported again, maybe grown
                first_ms, last_ms = min(first_ms, spans[name][0]), max(last_ms, spans[name][1])
            spans[name] = (first_ms, last_ms)
        if old is not None:
            frame = merge_frames([old.frame, frame])
            sources = tuple(dict.fromkeys((*old.sources, *sources)))
        else:
            frame = merge_frames([frame])
        meta = {"exchange": exchange, "symbol": symbol, "kind": kind,
                "interval_ms": interval_ms, "sources": list(sources),
                "source_spans": {name: list(span) for name, span in spans.items()}}
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({name: frame[name] for name in _COLUMNS[kind]})
        table = table.replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
        self._ensure_marker()
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, lambda tmp: pq.write_table(table, tmp))
        return StoredSeries(exchange, symbol, kind, interval_ms, frame, sources, path, spans)

    def _ensure_marker(self) -> None:
        marker = self.root / MARKER
        if not marker.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write(marker, lambda tmp: Path(tmp).write_text('{"format": 1}\n'))


def _atomic_write(path: Path, write) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
