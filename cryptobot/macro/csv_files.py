"""Reading macro CSV text: FRED downloads and any daily price file with date and close columns.

FRED writes `observation_date,SERIES` (older files: `DATE,SERIES`, or `date,value`), with an
empty cell or "." where there is no value. A malformed file raises MacroDataError naming it.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from cryptobot.errors import MacroDataError
from cryptobot.macro.observations import Observations

_DATE_COLUMNS = ("observation_date", "date")
_MISSING = ("", ".")


def parse_fred_csv(text: str, series_id: str, origin: str) -> Observations:
    """A FRED CSV (one date column and one value column) as Observations."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise MacroDataError(f"{origin}: empty file, expected a FRED CSV for {series_id}")
    header = [cell.strip().lower() for cell in rows[0]]
    if len(header) != 2 or header[0] not in _DATE_COLUMNS:
        raise MacroDataError(
            f"{origin}: header {','.join(rows[0])!r} is not a FRED CSV "
            f"(expected observation_date,{series_id})"
        )
    if header[1] not in (series_id.lower(), "value"):
        raise MacroDataError(f"{origin}: holds series {rows[0][1]!r}, not {series_id}")
    return _collect(rows[1:], 0, 1, series_id, origin)


def read_price_csv(path: Path, series_id: str) -> Observations:
    """Daily closes from any CSV with a date column and a close column (case-insensitive)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise MacroDataError(f"{path}: {series_id} price file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MacroDataError(f"{path}: cannot read {series_id} price file: {exc}") from None
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    date_col = next((i for i, name in enumerate(header) if name in _DATE_COLUMNS), None)
    close_col = header.index("close") if "close" in header else None
    if date_col is None or close_col is None:
        raise MacroDataError(f"{path}: needs a 'date' and a 'close' column, found {header}")
    return _collect(rows[1:], date_col, close_col, series_id, str(path))


def _collect(rows: list[list[str]], date_col: int, value_col: int, series_id: str,
             origin: str) -> Observations:
    dates: list[np.datetime64] = []
    values: list[float] = []
    for line_no, row in enumerate(rows, start=2):
        if not row:
            continue
        try:
            day = np.datetime64(row[date_col].strip()[:10], "D")
            cell = row[value_col].strip()
        except (IndexError, ValueError):
            raise MacroDataError(f"{origin}: line {line_no}: unreadable row {row!r}") from None
        if cell in _MISSING:
            continue
        try:
            value = float(cell)
        except ValueError:
            raise MacroDataError(
                f"{origin}: line {line_no}: value {cell!r} is not a number"
            ) from None
        if not math.isfinite(value):
            continue
        if dates and day <= dates[-1]:
            raise MacroDataError(f"{origin}: line {line_no}: date {day} is not after {dates[-1]}")
        dates.append(day)
        values.append(value)
    if not dates:
        raise MacroDataError(f"{origin}: no {series_id} observations in the file")
    return Observations(series_id, np.array(dates, dtype="datetime64[D]"),
                        np.array(values, dtype=np.float64), origin)
