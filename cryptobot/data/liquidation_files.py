"""Recorded liquidations for backtests: Binance USD-M forceOrder stream records as CSV.

The layout is a recorder's dump of the `<symbol>@forceOrder` stream with a header (`Symbol,Side,
Order Type,Time in Force,Quantity,Price,Average Price,Order Status,Last Filled Quantity,Filled
Quantity,Event Time (...),Trade Time (...)`), times with their UTC offset. Each record becomes a
`Liquidation` at its trade time, priced at its average fill price for its filled quantity (as
the stream parser reads `ap` and `z`). Rows of another layout appended to such a file are not
read, and counted. A record read twice (in two files: two recorders, or overlapping dumps; or
twice in one) is one liquidation: the same trade time, side, price and quantity count once,
and the copies are counted (the stream sends at most one forced order a second per symbol).

A file cannot tell a quiet market from a recorder that stopped: it vouches for the spans between
its records, cut wherever two records are further apart than `gap_ms`. Outside those spans the
liquidations are unknown, never "none". A backtest learns them as the clock reads the records:
each record shows the span from the previous record of its file, if that one is no more than
`gap_ms` older (`reveals`), and the silence after the last record read while it is no longer
than `gap_ms`; never what a later record shows. Note that the stream itself sends at most one forced
order per symbol per second (Binance's snapshot rule): the notional is a floor, alike in the
spike window and in the days it is compared with.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptobot.clock import datetime_to_ms, iso_utc
from cryptobot.errors import DataError
from cryptobot.exchange.symbols import market_id
from cryptobot.model import Liquidation

FORCE_ORDER_COLUMNS = ("Symbol", "Side", "Order Type", "Time in Force", "Quantity", "Price",
                       "Average Price", "Order Status", "Last Filled Quantity", "Filled Quantity")


@dataclass(frozen=True)
class LiquidationRecords:
    """One market's recorded liquidations and the spans [start, end) their files vouch for:
    in all (`spans`), and what each event shows once it is read (`reveals`, one per event)."""

    symbol: str
    events: tuple[Liquidation, ...]
    spans: tuple[tuple[int, int], ...]
    sources: tuple[str, ...]
    other_rows: int = 0  # rows of another layout in those files, not read
    reveals: tuple[tuple[int, int], ...] = ()
    gap_ms: int = 0  # the longest silence between two records that still counts as listened
    duplicates: int = 0  # records read more than once (overlapping files), counted once

    def describe(self) -> str:
        if not self.events:
            return f"{self.symbol} liquidations: none recorded"
        spans = ", ".join(f"{iso_utc(a)[:16]} .. {iso_utc(b)[:16]}" for a, b in self.spans)
        other = f"; {self.other_rows} rows of another layout not read" if self.other_rows else ""
        twice = (f"; {self.duplicates} records read twice counted once"
                 if self.duplicates else "")
        return (f"{len(self.events)} liquidations ({', '.join(self.sources)}), covering "
                f"{spans}{other}{twice}")


def is_force_order_file(path: Path) -> bool:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        return False
    return tuple(header[:len(FORCE_ORDER_COLUMNS)]) == FORCE_ORDER_COLUMNS and len(header) == 12


def load_liquidations(folder: str | Path, symbol: str, gap_ms: int) -> LiquidationRecords | None:
    """The forceOrder records of `symbol` in a folder's CSV files; None if the folder holds
    none of them (a missing folder holds none)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    files = sorted(p for p in folder.glob("*.csv") if is_force_order_file(p))
    read = [read_force_orders(p, symbol) for p in files]
    read = [(p.name, events, other) for p, (events, other) in zip(files, read, strict=True)
            if events]
    if not read:
        return None
    shown = sorted(((e, span) for _, found, _ in read
                    for e, span in zip(found, revealed_spans(found, gap_ms), strict=True)),
                   key=lambda pair: (pair[0].ts_ms, pair[1][0]))
    once = _once(shown)
    spans = _merge([span for _, found, _ in read for span in covered_spans(found, gap_ms)])
    return LiquidationRecords(symbol, tuple(e for e, _ in once), tuple(spans),
                              tuple(name for name, _, _ in read), sum(o for *_, o in read),
                              tuple(span for _, span in once), gap_ms, len(shown) - len(once))


def _once(shown: list[tuple[Liquidation, tuple[int, int]]]) -> list[tuple[Liquidation,
                                                                          tuple[int, int]]]:
    """Each record once (in time order, the widest span shown first): a record two files hold
    is the same liquidation; both files vouch for what it shows, the wider span kept."""
    seen: set[Liquidation] = set()
    kept = []
    for event, span in shown:
        if event not in seen:
            seen.add(event)
            kept.append((event, span))
    return kept


def read_force_orders(path: Path, symbol: str) -> tuple[list[Liquidation], int]:
    """(the liquidations of `symbol` in time order, rows of another layout)."""
    market = market_id(symbol)
    events: list[Liquidation] = []
    other = 0
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        next(rows, None)
        for line, row in enumerate(rows, start=2):
            if len(row) != 12:
                other += 1
                continue
            if row[0] != market:
                continue
            events.append(_liquidation(row, symbol, f"{path}:{line}"))
    events.sort(key=lambda e: e.ts_ms)
    return events, other


def _liquidation(row: list[str], symbol: str, where: str) -> Liquidation:
    try:
        side = row[1].lower()
        if side not in ("buy", "sell"):
            raise ValueError(f"side {row[1]!r}")
        moment = datetime.fromisoformat(row[11])
        if moment.tzinfo is None:
            raise ValueError(f"trade time {row[11]!r} has no UTC offset")
        return Liquidation(datetime_to_ms(moment), side, float(row[6] or row[5]),
                           float(row[9] or row[4]), symbol)
    except ValueError as exc:
        raise DataError(f"{where}: not a forceOrder record: {exc}") from None


def covered_spans(events: list[Liquidation], gap_ms: int) -> list[tuple[int, int]]:
    """[first, last] of each run of records no further apart than `gap_ms`."""
    spans: list[tuple[int, int]] = []
    for event in events:
        if spans and event.ts_ms - spans[-1][1] <= gap_ms:
            spans[-1] = (spans[-1][0], event.ts_ms + 1)
        else:
            spans.append((event.ts_ms, event.ts_ms + 1))
    return spans


def revealed_spans(events: list[Liquidation], gap_ms: int) -> list[tuple[int, int]]:
    """For each record (in time order), the span its reading shows covered: from the previous
    record if that is at most `gap_ms` older, else the record's own instant."""
    shown: list[tuple[int, int]] = []
    for i, event in enumerate(events):
        previous_ms = events[i - 1].ts_ms if i else None
        start_ms = (previous_ms if previous_ms is not None
                    and event.ts_ms - previous_ms <= gap_ms else event.ts_ms)
        shown.append((start_ms, event.ts_ms + 1))
    return shown


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
