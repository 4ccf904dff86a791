"""Signal candles packed as columns: one `signal_candle_chunks` row holds consecutive candles of
one symbol and interval as little-endian arrays (int64 open times, float64 prices and volume).

A 14-month backtest records ~41,000 signal candles: as rows they cost a tuple, a bound row and
two index entries each; as one chunk per symbol they are six byte strings. The numbers round-trip
exactly (Python floats are float64). Chunks keep the order candles were recorded in: a new
chunk starts whenever the symbol or the interval changes, and the reader reads them by seq.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cryptobot.engine.recorder import CandleBlock
from cryptobot.model import Candle

CHUNK_KEYS = ("run_id", "seq", "symbol", "interval_ms", "candle_count", "ts_open_ms", "open",
              "high", "low", "close", "volume")
_TIME = np.dtype("<i8")
_NUMBER = np.dtype("<f8")
_PRICE_FIELDS = ("open", "high", "low", "close", "volume")


class PendingChunks:
    """Signal candles recorded but not written yet, grouped into chunks in recording order."""

    def __init__(self) -> None:
        # (symbol, interval_ms, the chunk's column blocks); one-candle blocks (a candle closed
        # by the engine itself) gather in one block of lists, so packing joins few parts
        self._chunks: list[tuple[str, int, list[CandleBlock]]] = []
        self._gathering: CandleBlock | None = None
        self.candle_count = 0

    def add(self, symbol: str, block: CandleBlock) -> None:
        if not len(block):
            return
        last = self._chunks[-1] if self._chunks else None
        if last is None or last[0] != symbol or last[1] != block.interval_ms:
            last = (symbol, block.interval_ms, [])
            self._chunks.append(last)
        blocks = last[2]
        if len(block) == 1 and blocks and blocks[-1] is self._gathering:
            for gathered, column in zip(_columns(blocks[-1]), _columns(block), strict=True):
                gathered.append(column[0])
        elif len(block) == 1:  # a new block of lists of our own, for the next ones to join
            self._gathering = CandleBlock(block.interval_ms, *([column[0]] for column in
                                                               _columns(block)))
            blocks.append(self._gathering)
        else:
            blocks.append(block)
        self.candle_count += len(block)

    def add_candle(self, symbol: str, candle: Candle) -> None:
        """One candle: `add` of a one-candle block, without building the block when it joins
        the block being gathered (the engine closes candles one at a time)."""
        gathering = self._gathering
        last = self._chunks[-1] if self._chunks else None
        if (gathering is None or last is None or last[2][-1] is not gathering
                or last[0] != symbol or last[1] != candle.interval_ms):
            self.add(symbol, CandleBlock(candle.interval_ms, [candle.ts_open_ms], [candle.open],
                                         [candle.high], [candle.low], [candle.close],
                                         [candle.volume]))
            return
        gathering.ts_open_ms.append(candle.ts_open_ms)
        gathering.open.append(candle.open)
        gathering.high.append(candle.high)
        gathering.low.append(candle.low)
        gathering.close.append(candle.close)
        gathering.volume.append(candle.volume)
        self.candle_count += 1

    def __len__(self) -> int:
        """Chunks (rows) pending."""
        return len(self._chunks)

    def rows(self, run_id: int, first_seq: int) -> list[tuple[Any, ...]]:
        """One tuple of CHUNK_KEYS values per chunk, numbered from `first_seq`."""
        return [(run_id, seq, symbol, interval_ms, *_packed(blocks))
                for seq, (symbol, interval_ms, blocks) in enumerate(self._chunks, first_seq)]

    def clear(self) -> None:
        self._chunks.clear()
        self._gathering = None
        self.candle_count = 0


def _columns(block: CandleBlock) -> tuple[Any, ...]:
    return (block.ts_open_ms, block.open, block.high, block.low, block.close, block.volume)


def _packed(blocks: list[CandleBlock]) -> tuple[Any, ...]:
    count = sum(len(block) for block in blocks)
    columns = [_joined([block.ts_open_ms for block in blocks], _TIME)]
    columns += [_joined([getattr(block, name) for block in blocks], _NUMBER)
                for name in _PRICE_FIELDS]
    return (count, *columns)


def _joined(parts: list[Any], dtype: np.dtype) -> bytes:
    if len(parts) == 1:
        return np.asarray(parts[0], dtype=dtype).tobytes()
    return np.concatenate(parts, dtype=dtype).tobytes()  # lists and arrays alike, in one go


def unpacked(row: Any) -> list[Candle]:
    """The chunk's candles, tagged with its symbol; ValueError when the row is inconsistent."""
    count = int(row.candle_count)
    columns = [_array(row.ts_open_ms, _TIME, count, "ts_open_ms")]
    columns += [_array(getattr(row, name), _NUMBER, count, name) for name in _PRICE_FIELDS]
    ts_open_ms, open_, high, low, close, volume = (column.tolist() for column in columns)
    interval_ms, symbol = int(row.interval_ms), str(row.symbol)
    return [Candle(ts, interval_ms, o, h, lo, c, v, symbol)
            for ts, o, h, lo, c, v in zip(ts_open_ms, open_, high, low, close, volume,
                                          strict=True)]


def _array(data: bytes | None, dtype: np.dtype, count: int, name: str) -> np.ndarray:
    if data is None or len(data) != count * dtype.itemsize:
        size = "missing" if data is None else f"{len(data)} bytes"
        raise ValueError(f"{name}: {size} for {count} candles")
    return np.frombuffer(bytes(data), dtype=dtype)
