"""`Table`: the form every loaded series takes, named numpy columns of one length.

Candles, open interest and funding travel from the readers through the store and
`load_market_data` to the engine as plain numpy arrays (no pandas on the loading path: a
backtest would pay a third of a second to import it). Rows are taken with numpy indexing:
`table[lo:hi]` (views), `table[mask]`, `table[positions]`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


class Table:
    """Columns in a fixed order, each a 1-d numpy array, all of one length."""

    __slots__ = ("_columns",)

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self._columns = {name: np.asarray(values) for name, values in columns.items()}
        lengths = {len(values) for values in self._columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._columns)

    @property
    def empty(self) -> bool:
        return len(self) == 0

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __getitem__(self, key: Any) -> Any:
        """A column by name (an array), or rows (a slice, a boolean mask, positions)."""
        if isinstance(key, str):
            return self._columns[key]
        if isinstance(key, int | np.integer):
            raise TypeError("one row of a Table: table[i:i + 1] or table.rows()")
        return Table({name: values[key] for name, values in self._columns.items()})

    def time(self) -> np.ndarray:
        """The first column: every series' time (ts_open_ms or ts_ms)."""
        return next(iter(self._columns.values()))

    def rows(self) -> Iterator[tuple]:
        """Each row as a tuple of Python numbers, in column order."""
        return zip(*(values.tolist() for values in self._columns.values()), strict=True)

    def copy(self) -> Table:
        return Table({name: values.copy() for name, values in self._columns.items()})

    def equals(self, other: object) -> bool:
        """Same columns, dtypes and values (NaN equal to NaN)."""
        if not isinstance(other, Table) or self.columns != other.columns:
            return False
        return all(a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
                   for a, b in zip(self._columns.values(), other._columns.values(), strict=True))

    def to_pandas(self) -> Any:
        """A pandas DataFrame of the same columns, for the tools that want one (pandas is
        imported here, only then)."""
        import pandas as pd

        return pd.DataFrame(dict(self._columns))

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self.columns)})"
