"""Read market-data files, each recognised by its content (never its name).

Layouts: Binance kline dumps (12 columns, with or without header, zipped or not), Binance
futures `metrics` dumps (`sum_open_interest`, daily or 5m), Binance `openInterestHist` rows
(`sumOpenInterest`), Binance `fundingRate` dumps, the plain CSV layouts of our data folder
(`open_time_ms,...` candles, `funding_time_ms,...` funding), freqtrade feather files, and JSON
lists shaped like ccxt's OHLCV / open-interest / funding answers or Binance's raw REST rows.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from cryptobot.data.arrow_columns import column_array
from cryptobot.data.frames import (
    RowLocator,
    infer_interval_ms,
    to_floats,
    validate_funding,
    validate_open_interest,
    validated_candles,
)
from cryptobot.data.markets import market_from_column, market_from_name
from cryptobot.data.table import Table
from cryptobot.data.text_times import epoch_ms
from cryptobot.errors import DataError

CANDLES, OPEN_INTEREST, FUNDING = "candles", "open_interest", "funding"
DATA_SUFFIXES = {".csv", ".zip", ".feather", ".json", ".txt"}
_TIME_NAMES = ("open_time_ms", "open_time", "timestamp", "date", "time", "ts_open_ms")
_OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class ParsedFile:
    """One file, read and validated: a normalised table of one kind."""

    source: str  # the file name, as shown to users
    kind: str  # CANDLES, OPEN_INTEREST or FUNDING
    layout: str  # e.g. "binance-kline", "binance-metrics", "freqtrade-feather"
    frame: Table
    interval_ms: int | None = None  # candles only
    market: str | None = None  # the market id the file says it holds ('BTCUSDT'), if it does
    where: str = ""  # the file as the user named it (its path), for messages


def read_market_file(path: str | Path, now_ms: int | None = None) -> ParsedFile:
    """Read one file in any supported layout; DataError names the file (as given) and its row.
    With `now_ms` (the clock), a candle that has not closed by then is an error too."""
    path = Path(path)
    name, where = path.name, str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] == b"PK":
        member, raw = _unzip(path, raw)
        name, where = f"{name}:{member}", f"{where}:{member}"
    if raw[:6] == b"ARROW1":
        parsed = _read_feather(where, raw, now_ms)
    else:
        text = raw.decode("utf-8-sig", errors="replace")
        parsed = _read_json(where, text, now_ms) if text.lstrip()[:1] in ("[", "{") \
            else _read_csv(where, text, now_ms)
    market = parsed.market or market_from_name(name)
    return replace(parsed, source=name, where=where, market=market)


def _unzip(path: Path, raw: bytes) -> tuple[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise DataError(f"{path.name}: a zip must hold exactly one data file, "
                                f"found {len(members)}")
            return members[0], archive.read(members[0])
    except zipfile.BadZipFile:
        raise DataError(f"{path.name}: not a readable zip file") from None


# ---- CSV ----------------------------------------------------------------------------------

def _read_csv(name: str, text: str, now_ms: int | None = None) -> ParsedFile:
    first_line = text.split("\n", 1)[0].strip()
    fields = [f.strip().lower() for f in first_line.split(",")]
    if not first_line:
        raise DataError(f"{name}: empty file")
    if _is_number(fields[0]):
        if len(fields) == 12:
            names = ["open_time", *_OHLCV, "close_time", *[f"x{i}" for i in range(5)]]
            frame, locator = _csv(name, text, names, 1)
            return _candles(locator, "binance-kline", frame, "open_time", now_ms)
        raise DataError(f"{name}: unrecognised layout: headerless rows with {len(fields)} "
                        "columns (a Binance kline dump has 12)")
    frame, locator = _csv(name, text, None, 2)
    columns = set(frame.columns)
    if "sum_open_interest" in columns:
        parsed = _open_interest(locator, "binance-metrics", frame, "create_time",
                                "sum_open_interest", "sum_open_interest_value")
        symbols = frame["symbol"].tolist() if "symbol" in columns else []
        return replace(parsed, market=market_from_column(symbols, name))
    if "sumopeninterest" in columns:
        return _open_interest(locator, "binance-openInterestHist", frame, "timestamp",
                              "sumopeninterest", "sumopeninterestvalue")
    if "funding_rate" in columns and "funding_time_ms" in columns:
        return _funding(locator, "funding-csv", frame, "funding_time_ms", "funding_rate")
    if "last_funding_rate" in columns and "calc_time" in columns:
        return _funding(locator, "binance-fundingRate", frame, "calc_time", "last_funding_rate")
    if set(_OHLCV) <= columns:
        time_column = next((c for c in _TIME_NAMES if c in columns), None)
        if time_column is not None:
            layout = "binance-kline" if "close_time" in columns else "candles-csv"
            return _candles(locator, layout, frame, time_column, now_ms)
    raise DataError(f"{name}: unrecognised layout (header {first_line[:80]!r})")


def _csv(name: str, text: str, names: list[str] | None,
         first_line: int) -> tuple[Table, RowLocator]:
    """The cells as text, one column each (named by `names`, else by the header, lower case);
    blank lines are skipped, and the locator still names each row's line in the file."""
    lines = csv.reader(io.StringIO(text))
    try:
        if names is None:
            names = [field.strip().lower() for field in next(lines)]
        width = len(names)
        kept, rows = [], []
        for position, row in enumerate(lines):
            if not any(row):
                continue
            if len(row) > width:
                raise DataError(f"{name}: not a readable CSV (line {position + first_line} has "
                                f"{len(row)} fields, the first {width})")
            kept.append(position)
            rows.append(row + [""] * (width - len(row)))
    except csv.Error as exc:
        raise DataError(f"{name}: not a readable CSV ({exc})") from None
    names = _unique_names(names)
    cells = list(zip(*rows, strict=True)) if rows else [()] * width
    frame = Table({column: np.array(values, dtype=str) for column, values
                   in zip(names, cells, strict=True)})
    return frame, RowLocator(name, first_line, np.array(kept, dtype=np.int64))


def _unique_names(names: list[str]) -> list[str]:
    """A repeated column name gets '.1', '.2' ... (as pandas names them): the first one counts."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(f"{name}.{count}" if count else name)
    return unique


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _candles(locator: RowLocator, layout: str, frame: Table, time_column: str,
             now_ms: int | None = None) -> ParsedFile:
    data = {"ts_open_ms": epoch_ms(frame[time_column], locator, time_column),
            **{column: frame[column] for column in _OHLCV}}
    candles, interval_ms = validated_candles(
        Table(data), locator, _one_candle_interval(frame, data["ts_open_ms"]), now_ms)
    if interval_ms is None:
        interval_ms = infer_interval_ms(candles["ts_open_ms"], locator.source)  # raises
    return ParsedFile(locator.source, CANDLES, layout, candles, interval_ms)


def _one_candle_interval(frame: Table, ts_open_ms: np.ndarray) -> int | None:
    """A lone kline row's length from its close time (more rows: the common step tells)."""
    if len(ts_open_ms) != 1 or "close_time" not in frame:
        return None
    close_ms = float(to_floats(frame["close_time"])[0])
    if not np.isfinite(close_ms):
        return None
    if close_ms >= 1e14:
        close_ms = close_ms // 1000
    interval_ms = int(close_ms) + 1 - int(ts_open_ms[0])
    return interval_ms if interval_ms > 0 else None


def _open_interest(locator: RowLocator, layout: str, frame: Table, time_column: str,
                   contracts_column: str, value_column: str) -> ParsedFile:
    # Binance leaves metrics rows blank on event days: those rows carry no sample.
    filled = np.flatnonzero(np.char.strip(frame[contracts_column]) != "")
    frame, locator = frame[filled], locator.keeping(filled)
    values = frame[value_column] if value_column in frame else np.full(len(frame), np.nan)
    data = Table({"ts_ms": epoch_ms(frame[time_column], locator, time_column),
                  "oi_contracts": frame[contracts_column], "oi_value_usdt": values})
    return ParsedFile(locator.source, OPEN_INTEREST, layout,
                      validate_open_interest(data, locator))


def _funding(locator: RowLocator, layout: str, frame: Table, time_column: str,
             rate_column: str) -> ParsedFile:
    data = Table({"ts_ms": epoch_ms(frame[time_column], locator, time_column),
                  "rate": frame[rate_column]})
    return ParsedFile(locator.source, FUNDING, layout, validate_funding(data, locator))


# ---- feather (freqtrade) ------------------------------------------------------------------

def _read_feather(name: str, raw: bytes, now_ms: int | None = None) -> ParsedFile:
    import pyarrow as pa
    import pyarrow.feather as feather

    try:
        table = feather.read_table(pa.BufferReader(raw))
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"{name}: not a readable feather file ({exc})") from None
    columns = {str(c).lower(): table.column(c) for c in table.column_names}
    if not ({"date", *_OHLCV} <= set(columns)):
        raise DataError(f"{name}: feather file without the columns date, {', '.join(_OHLCV)}")
    locator = RowLocator(name, None)
    data = {"ts_open_ms": _feather_times_ms(columns["date"], locator),
            **{c: column_array(columns[c]) for c in _OHLCV}}
    candles, interval_ms = validated_candles(Table(data), locator, now_ms=now_ms)
    if interval_ms is None:
        interval_ms = infer_interval_ms(candles["ts_open_ms"], name)  # raises
    return ParsedFile(name, CANDLES, "freqtrade-feather", candles, interval_ms)


_UNIT_MS = {"s": (1000, 1), "ms": (1, 1), "us": (1, 1000), "ns": (1, 1_000_000)}


def _feather_times_ms(dates: Any, locator: RowLocator) -> np.ndarray:
    """A timestamp column (any unit) -> epoch ms, floored; other columns read as time cells."""
    import pyarrow as pa

    times = column_array(dates)
    if not pa.types.is_timestamp(dates.type):
        return epoch_ms(times, locator, "date")
    times_per_ms, per_ms = _UNIT_MS[dates.type.unit]
    if dates.null_count:  # nulls came as NaN: left for validation to name
        return np.floor(times * times_per_ms / per_ms)
    return times * times_per_ms // per_ms


# ---- JSON (ccxt-shaped or Binance REST rows) ----------------------------------------------

def _read_json(name: str, text: str, now_ms: int | None = None) -> ParsedFile:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{name}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_rows(rows, name, now_ms=now_ms)


def parse_rows(rows: Any, source: str, interval_ms: int | None = None,
               now_ms: int | None = None) -> ParsedFile:
    """ccxt OHLCV lists, ccxt open-interest / funding dicts, or Binance REST rows.
    `interval_ms` names the candles' timeframe when the caller knows it; with `now_ms`, a candle
    not closed by then is an error."""
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{source}: expected a non-empty JSON list of rows")
    first = rows[0]
    locator = RowLocator(source, None)
    if isinstance(first, list | tuple) and len(first) >= 6:
        short = [i for i, r in enumerate(rows) if not isinstance(r, list | tuple) or len(r) < 6]
        if short:
            raise DataError(f"{locator.where(short[0])}: expected "
                            "[time, open, high, low, close, volume]")
        cells = [_cells(values) for values in zip(*(r[:6] for r in rows), strict=True)]
        data = {"ts_open_ms": epoch_ms(cells[0], locator, "time"),
                **dict(zip(_OHLCV, cells[1:], strict=True))}
        if interval_ms is None and len(rows) == 1 and len(first) >= 7:
            interval_ms = _row_interval(first, locator)
        candles, interval_ms = validated_candles(Table(data), locator, interval_ms, now_ms)
        if interval_ms is None:
            interval_ms = infer_interval_ms(candles["ts_open_ms"], source)  # raises
        return ParsedFile(source, CANDLES, "ohlcv-list", candles, interval_ms)
    if isinstance(first, dict):
        keys = dict.fromkeys(k for r in rows if isinstance(r, dict) for k in r)
        frame = {k: _cells([r.get(k) if isinstance(r, dict) else None for r in rows])
                 for k in keys}
        if "openInterestAmount" in frame:
            return _open_interest_rows(locator, "ccxt-open-interest", frame, "timestamp",
                                       "openInterestAmount", "openInterestValue")
        if "sumOpenInterest" in frame:
            return _open_interest_rows(locator, "binance-openInterestHist", frame, "timestamp",
                                       "sumOpenInterest", "sumOpenInterestValue")
        if "fundingRate" in frame:
            time_column = "fundingTime" if "fundingTime" in frame else "timestamp"
            data = Table({"ts_ms": epoch_ms(_column(frame, time_column), locator, time_column),
                          "rate": frame["fundingRate"]})
            return ParsedFile(source, FUNDING, "funding-list", validate_funding(data, locator))
    raise DataError(f"{source}: unrecognised JSON rows (expected OHLCV lists or "
                    "open-interest / funding objects)")


def _cells(values: Any) -> np.ndarray:
    """JSON values as they came (numbers, text, None), for numbers and for messages."""
    cells = np.empty(len(values), dtype=object)
    cells[:] = list(values)
    return cells


def _column(frame: dict[str, np.ndarray], name: str) -> np.ndarray:
    length = len(next(iter(frame.values())))
    return frame[name] if name in frame else _cells([None] * length)


def _row_interval(row: list | tuple, locator: RowLocator) -> int:
    """A lone Binance REST kline's length, from its open and close times."""
    try:
        interval_ms = int(row[6]) + 1 - int(row[0])
    except (TypeError, ValueError):
        raise DataError(f"{locator.where(0)}: close time {row[6]!r} is not a time") from None
    if interval_ms <= 0:
        raise DataError(f"{locator.where(0)}: close time {row[6]!r} is not after the open time")
    return interval_ms


def _open_interest_rows(locator: RowLocator, layout: str, frame: dict[str, np.ndarray],
                        time_column: str, contracts_column: str,
                        value_column: str) -> ParsedFile:
    data = Table({"ts_ms": epoch_ms(_column(frame, time_column), locator, time_column),
                  "oi_contracts": frame[contracts_column],
                  # a value that is not a number (None) is an unknown value, allowed
                  "oi_value_usdt": to_floats(_column(frame, value_column))})
    return ParsedFile(locator.source, OPEN_INTEREST, layout,
                      validate_open_interest(data, locator))
