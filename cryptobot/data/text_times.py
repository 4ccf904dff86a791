"""Time cells of a data file -> epoch milliseconds: epoch numbers in s, ms or us (told apart by
magnitude), or date-time text (ISO 8601 read here; any other layout through pandas, imported
only for such a file)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np

from cryptobot.data.frames import RowLocator, raw_cell, to_floats
from cryptobot.errors import DataError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def epoch_ms(values: np.ndarray, locator: RowLocator, column: str) -> np.ndarray:
    """Epoch ms (float64) of each cell; the first cell that is no time is a DataError naming
    its line and its text."""
    numbers = to_floats(values)
    # Binance switched some dumps to microseconds in 2025; seconds come from ccxt-less tools.
    array = np.where(numbers >= 1e14, np.floor(numbers / 1000), numbers)
    array = np.where(array < 1e11, array * 1000, array)
    texts = np.flatnonzero(np.isnan(numbers))
    if texts.size:
        array[texts] = _dates_ms([raw_cell(values, int(i)) for i in texts])
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        position = int(bad[0])
        raise DataError(f"{locator.where(position)}: {column} {raw_cell(values, position)!r} is "
                        "not a time (epoch number or date)")
    return array


def _dates_ms(cells: list[object]) -> list[float]:
    """Date-time text -> epoch ms (a date without a zone is UTC); NaN where it is none."""
    out = [_iso_ms(cell) for cell in cells]
    others = [i for i, (cell, ms) in enumerate(zip(cells, out, strict=True))
              if math.isnan(ms) and isinstance(cell, str) and cell.strip()]
    if others:
        for i, ms in zip(others, _pandas_dates_ms([cells[i] for i in others]), strict=True):
            out[i] = ms
    return out


def _iso_ms(cell: object) -> float:
    """ISO 8601 text, or a date / date-time object (an arrow date column comes as those)."""
    if isinstance(cell, date) and not isinstance(cell, datetime):
        cell = datetime(cell.year, cell.month, cell.day)
    if isinstance(cell, datetime):
        moment = cell
    elif not isinstance(cell, str):
        return math.nan
    else:
        try:
            moment = datetime.fromisoformat(cell.strip())
        except ValueError:
            return math.nan
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return float((moment - _EPOCH) // _ONE_MS)


def _pandas_dates_ms(texts: list[object]) -> list[float]:
    import pandas as pd  # only for date layouts ISO 8601 does not cover

    moments = pd.to_datetime(pd.Series(texts, dtype=object), utc=True, errors="coerce",
                             format="mixed")
    as_ms = (moments - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
    return as_ms.astype("float64").tolist()
