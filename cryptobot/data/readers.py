"""Read market-data files, each recognised by its content (never its name).

Layouts: Binance kline dumps (12 columns, with or without header, zipped or not), Binance
futures `metrics` dumps (`sum_open_interest`, daily or 5m), Binance `openInterestHist` rows
(`sumOpenInterest`), Binance `fundingRate` dumps, the plain CSV layouts of our data folder
(`open_time_ms,...` candles, `funding_time_ms,...` funding), freqtrade feather files, and JSON
lists shaped like ccxt's OHLCV / open-interest / funding answers or Binance's raw REST rows.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptobot.data.frames import (
    RowLocator,
    infer_interval_ms,
    validate_candles,
    validate_funding,
    validate_open_interest,
)
from cryptobot.data.markets import market_from_column, market_from_name
from cryptobot.errors import DataError

CANDLES, OPEN_INTEREST, FUNDING = "candles", "open_interest", "funding"
DATA_SUFFIXES = {".csv", ".zip", ".feather", ".json", ".txt"}
_TIME_NAMES = ("open_time_ms", "open_time", "timestamp", "date", "time", "ts_open_ms")
_OHLCV = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class ParsedFile:
    """One file, read and validated: a normalised frame of one kind."""

    source: str  # the file name, as shown to users
    kind: str  # CANDLES, OPEN_INTEREST or FUNDING
    layout: str  # e.g. "binance-kline", "binance-metrics", "freqtrade-feather"
    frame: pd.DataFrame
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
            frame = _csv(name, text, header=None)
            frame.columns = ["open_time", *_OHLCV, "close_time", *[f"x{i}" for i in range(5)]]
            return _candles(name, "binance-kline", frame, "open_time", 1, now_ms)
        raise DataError(f"{name}: unrecognised layout: headerless rows with {len(fields)} "
                        "columns (a Binance kline dump has 12)")
    frame = _csv(name, text, header=0)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    columns = set(frame.columns)
    if "sum_open_interest" in columns:
        parsed = _open_interest(name, "binance-metrics", frame, "create_time",
                                "sum_open_interest", "sum_open_interest_value")
        symbols = frame["symbol"].astype(str).tolist() if "symbol" in columns else []
        return replace(parsed, market=market_from_column(symbols, name))
    if "sumopeninterest" in columns:
        return _open_interest(name, "binance-openInterestHist", frame, "timestamp",
                              "sumopeninterest", "sumopeninterestvalue")
    if "funding_rate" in columns and "funding_time_ms" in columns:
        return _funding(name, "funding-csv", frame, "funding_time_ms", "funding_rate")
    if "last_funding_rate" in columns and "calc_time" in columns:
        return _funding(name, "binance-fundingRate", frame, "calc_time", "last_funding_rate")
    if set(_OHLCV) <= columns:
        time_column = next((c for c in _TIME_NAMES if c in columns), None)
        if time_column is not None:
            layout = "binance-kline" if "close_time" in columns else "candles-csv"
            return _candles(name, layout, frame, time_column, 2, now_ms)
    raise DataError(f"{name}: unrecognised layout (header {first_line[:80]!r})")


def _csv(name: str, text: str, header: int | None) -> pd.DataFrame:
    try:
        frame = pd.read_csv(io.StringIO(text), header=header, dtype=str,
                            skip_blank_lines=False, keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise DataError(f"{name}: not a readable CSV ({reason})") from None
    # Blank lines stay rows until here so the index still maps to file lines in errors.
    blank = (frame.isna() | frame.eq("")).all(axis=1)
    return frame[~blank]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---- time columns -------------------------------------------------------------------------

def _epoch_ms(values: pd.Series, locator: RowLocator, column: str) -> pd.Series:
    """Epoch numbers (s, ms or us, by magnitude) or date-time text -> epoch ms (float); the
    first cell that is neither is a DataError naming its line and its text."""
    numbers = pd.to_numeric(values, errors="coerce")
    array = numbers.to_numpy(dtype=np.float64)
    # Binance switched some dumps to microseconds in 2025; seconds come from ccxt-less tools.
    array = np.where(array >= 1e14, np.floor(array / 1000), array)
    array = np.where(array < 1e11, array * 1000, array)
    result = pd.Series(array, index=values.index)
    texts = numbers.isna()
    if texts.any():
        moments = pd.to_datetime(values[texts], utc=True, errors="coerce", format="mixed")
        as_ms = (moments - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        result[texts] = as_ms.astype("float64")
    bad = np.flatnonzero(~np.isfinite(result.to_numpy(dtype=np.float64)))
    if bad.size:
        position = int(bad[0])
        raw = values.iloc[position]
        raw = raw.item() if isinstance(raw, np.generic) else raw
        raise DataError(f"{locator.where(int(values.index[position]))}: {column} {raw!r} is not "
                        "a time (epoch number or date)")
    return result


def _candles(name: str, layout: str, frame: pd.DataFrame, time_column: str,
             first_line: int | None, now_ms: int | None = None) -> ParsedFile:
    locator = RowLocator(name, first_line)
    data = pd.DataFrame({"ts_open_ms": _epoch_ms(frame[time_column], locator, time_column)})
    for column in _OHLCV:
        data[column] = frame[column]
    interval_ms = _one_candle_interval(frame, data)
    candles = validate_candles(data, locator, interval_ms, now_ms)
    if interval_ms is None:
        interval_ms = infer_interval_ms(candles["ts_open_ms"].to_numpy(), name)
    return ParsedFile(name, CANDLES, layout, candles, interval_ms)


def _one_candle_interval(frame: pd.DataFrame, data: pd.DataFrame) -> int | None:
    """A lone kline row's length from its close time (more rows: the common step tells)."""
    if len(data) != 1 or "close_time" not in frame.columns:
        return None
    close_ms = pd.to_numeric(frame["close_time"], errors="coerce").iloc[0]
    if not np.isfinite(close_ms):
        return None
    if close_ms >= 1e14:
        close_ms = close_ms // 1000
    interval_ms = int(close_ms) + 1 - int(data["ts_open_ms"].iloc[0])
    return interval_ms if interval_ms > 0 else None


def _open_interest(name: str, layout: str, frame: pd.DataFrame, time_column: str,
                   contracts_column: str, value_column: str) -> ParsedFile:
    locator = RowLocator(name, 2)
    # Binance leaves metrics rows blank on event days: those rows carry no sample.
    blank = frame[contracts_column].astype(str).str.strip() == ""
    frame = frame[~blank]
    data = pd.DataFrame({"ts_ms": _epoch_ms(frame[time_column], locator, time_column)})
    data["oi_contracts"] = frame[contracts_column]
    values = frame[value_column] if value_column in frame.columns else np.nan
    data["oi_value_usdt"] = pd.Series(values, index=frame.index).replace("", np.nan)
    return ParsedFile(name, OPEN_INTEREST, layout, validate_open_interest(data, locator))


def _funding(name: str, layout: str, frame: pd.DataFrame, time_column: str,
             rate_column: str) -> ParsedFile:
    locator = RowLocator(name, 2)
    data = pd.DataFrame({"ts_ms": _epoch_ms(frame[time_column], locator, time_column)})
    data["rate"] = frame[rate_column]
    return ParsedFile(name, FUNDING, layout, validate_funding(data, locator))


# ---- feather (freqtrade) ------------------------------------------------------------------

def _read_feather(name: str, raw: bytes, now_ms: int | None = None) -> ParsedFile:
    try:
        frame = pd.read_feather(io.BytesIO(raw))
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"{name}: not a readable feather file ({exc})") from None
    frame.columns = [str(c).lower() for c in frame.columns]
    if not ({"date", *_OHLCV} <= set(frame.columns)):
        raise DataError(f"{name}: feather file without the columns date, {', '.join(_OHLCV)}")
    dates = pd.to_datetime(frame["date"], utc=True)
    ts_ms = (dates - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    data = pd.DataFrame({"ts_open_ms": ts_ms, **{c: frame[c] for c in _OHLCV}})
    locator = RowLocator(name, None)
    candles = validate_candles(data, locator, now_ms=now_ms)
    interval_ms = infer_interval_ms(candles["ts_open_ms"].to_numpy(), name)
    return ParsedFile(name, CANDLES, "freqtrade-feather", candles, interval_ms)


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
        frame = pd.DataFrame([list(r[:6]) for r in rows], columns=["ts_open_ms", *_OHLCV])
        frame["ts_open_ms"] = _epoch_ms(frame["ts_open_ms"], locator, "time")
        if interval_ms is None and len(rows) == 1 and len(first) >= 7:
            interval_ms = _row_interval(first, locator)
        candles = validate_candles(frame, locator, interval_ms, now_ms)
        if interval_ms is None:
            interval_ms = infer_interval_ms(candles["ts_open_ms"].to_numpy(), source)
        return ParsedFile(source, CANDLES, "ohlcv-list", candles, interval_ms)
    if isinstance(first, dict):
        frame = pd.DataFrame(rows)
        if "openInterestAmount" in frame.columns:
            return _open_interest_rows(source, "ccxt-open-interest", frame, "timestamp",
                                       "openInterestAmount", "openInterestValue")
        if "sumOpenInterest" in frame.columns:
            return _open_interest_rows(source, "binance-openInterestHist", frame, "timestamp",
                                       "sumOpenInterest", "sumOpenInterestValue")
        if "fundingRate" in frame.columns:
            time_column = "fundingTime" if "fundingTime" in frame.columns else "timestamp"
            data = pd.DataFrame({"ts_ms": _epoch_ms(frame[time_column], locator, time_column),
                                 "rate": frame["fundingRate"]})
            return ParsedFile(source, FUNDING, "funding-list", validate_funding(data, locator))
    raise DataError(f"{source}: unrecognised JSON rows (expected OHLCV lists or "
                    "open-interest / funding objects)")


def _row_interval(row: list | tuple, locator: RowLocator) -> int:
    """A lone Binance REST kline's length, from its open and close times."""
    try:
        interval_ms = int(row[6]) + 1 - int(row[0])
    except (TypeError, ValueError):
        raise DataError(f"{locator.where(0)}: close time {row[6]!r} is not a time") from None
    if interval_ms <= 0:
        raise DataError(f"{locator.where(0)}: close time {row[6]!r} is not after the open time")
    return interval_ms


def _open_interest_rows(source: str, layout: str, frame: pd.DataFrame, time_column: str,
                        contracts_column: str, value_column: str) -> ParsedFile:
    locator = RowLocator(source, None)
    data = pd.DataFrame({"ts_ms": _epoch_ms(frame[time_column], locator, time_column),
                         "oi_contracts": frame[contracts_column]})
    values = frame[value_column] if value_column in frame.columns else None
    data["oi_value_usdt"] = pd.to_numeric(values, errors="coerce") if values is not None \
        else np.nan
    return ParsedFile(source, OPEN_INTEREST, layout, validate_open_interest(data, locator))
