"""When was a position on the fake venue not (fully) covered by its stops?

`FakeExchangeState.protection_log` holds (ms, signed position qty, qty of working reduce-only
stops on the closing side) after every change; each entry holds until the next one. A fault
suite counts the spans where the position exceeds its stops, minus the spans it excludes
(the bot was down on purpose, say).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

EPSILON_QTY = 1e-9


def unprotected_spans(log: Sequence[tuple[int, float, float]],
                      excluded: Iterable[tuple[int, int]] = (),
                      until_ms: int | None = None) -> list[tuple[int, int, float]]:
    """(start_ms, end_ms, qty_uncovered) for every stretch where |position| > covered.

    The last entry holds until `until_ms` (default: its own time, so it adds nothing: pass the
    venue's `now_ms` to count a position left unprotected at the end). Zero-length spans are
    dropped; touching spans with the same uncovered qty are merged."""
    if not log:
        return []
    raw: list[tuple[int, int, float]] = []
    ends = [ms for ms, _, _ in log[1:]] + [log[-1][0] if until_ms is None else until_ms]
    for (start_ms, qty, covered), end_ms in zip(log, ends, strict=True):
        uncovered = abs(qty) - covered
        if uncovered > EPSILON_QTY and end_ms > start_ms:
            raw.extend(_cut(start_ms, end_ms, uncovered, sorted(excluded)))
    merged: list[tuple[int, int, float]] = []
    for span in raw:
        if merged and merged[-1][1] == span[0] and abs(merged[-1][2] - span[2]) <= EPSILON_QTY:
            merged[-1] = (merged[-1][0], span[1], span[2])
        else:
            merged.append(span)
    return merged


def _cut(start_ms: int, end_ms: int, qty: float,
         excluded: list[tuple[int, int]]) -> list[tuple[int, int, float]]:
    """[start_ms, end_ms) minus the excluded spans."""
    pieces, cursor = [], start_ms
    for down_start, down_end in excluded:
        if down_end <= cursor or down_start >= end_ms:
            continue
        if down_start > cursor:
            pieces.append((cursor, down_start, qty))
        cursor = max(cursor, down_end)
    if cursor < end_ms:
        pieces.append((cursor, end_ms, qty))
    return pieces
