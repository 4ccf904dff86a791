"""pyarrow columns -> numpy arrays without pandas.

pyarrow's own `to_numpy` goes through its pandas conversion layer, which imports pandas (a third
of a second) the first time; numbers and timestamps are read here from their buffers instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def column_array(column: Any) -> np.ndarray:
    """A pyarrow Array or ChunkedArray as one numpy array (read-only where it is a view of
    arrow's memory): numbers as themselves (a null as NaN: floats), timestamps as their integer
    count in their own unit, anything else as Python objects."""
    chunks = column.chunks if hasattr(column, "chunks") else [column]
    parts = [_chunk_array(chunk) for chunk in chunks]
    if not parts:
        return np.zeros(0, dtype=_dtype(column.type) or object)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _dtype(arrow_type: Any) -> np.dtype | None:
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return np.dtype(np.int64)
    if pa.types.is_floating(arrow_type) or pa.types.is_integer(arrow_type):
        kind = "f" if pa.types.is_floating(arrow_type) else \
            ("i" if pa.types.is_signed_integer(arrow_type) else "u")
        return np.dtype(f"{kind}{arrow_type.bit_width // 8}")
    return None


def _chunk_array(chunk: Any) -> np.ndarray:
    dtype = _dtype(chunk.type)
    if dtype is None:
        return np.array(chunk.to_pylist(), dtype=object)
    if not len(chunk):
        return np.zeros(0, dtype=dtype)
    validity, data = chunk.buffers()[:2]
    values = np.frombuffer(data, dtype=dtype, count=len(chunk),
                           offset=chunk.offset * dtype.itemsize)
    if not chunk.null_count:
        return values
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    valid = bits[chunk.offset:chunk.offset + len(chunk)].astype(bool)
    out = values.astype(np.float64)
    out[~valid] = np.nan
    return out
