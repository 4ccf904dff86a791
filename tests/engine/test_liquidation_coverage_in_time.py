"""Recorded liquidations vouch for a span only as the clock reads them: a record ends a silence
only once its own time has come, so a backtest can never learn at a decision that a later record
will close the gap (cryptobot/data/liquidation_files.py `reveals`, LiquidationBook `known_ms`).

Real Binance forceOrder records of December 2024 (data/liquidations); one hand-made SYNTHETIC
case (three records) as a reviewer reported it.
"""

from __future__ import annotations

import csv
from datetime import datetime

from cryptobot.clock import MINUTE_MS, SimClock, datetime_to_ms, parse_utc
from cryptobot.data.liquidation_files import load_liquidations, revealed_spans
from cryptobot.engine.liquidations import LiquidationBook
from cryptobot.model import Liquidation
from tests.engine.test_evidence import FORCE_ORDERS, LIQUIDATIONS, SYMBOL

HOUR = 60 * MINUTE_MS
M15 = 15 * MINUTE_MS


def book_fed(events, reveals, gap_ms: int, now_ms: int) -> LiquidationBook:
    """As the backtest feeds it: everything up front, each span known from its record's time."""
    book = LiquidationBook(SimClock(now_ms))
    for event, (start_ms, end_ms) in zip(events, reveals, strict=True):
        book.cover(start_ms, end_ms, event.ts_ms, gap_ms)
        book.add(event)
    return book


def test_synthetic_a_record_after_the_decision_never_changes_the_answer():
    t = parse_utc("2024-12-05T20:30")
    records = [Liquidation(t + m * MINUTE_MS, "sell", 100_000.0, 0.1, SYMBOL) for m in (-5, 1, 50)]
    window = (t, t + M15)
    for minute in range(15, 120):
        decided = t + minute * MINUTE_MS
        read = [e for e in records if e.ts_ms <= decided]
        whole = book_fed(records, revealed_spans(records, HOUR), HOUR, decided)
        cut = book_fed(read, revealed_spans(read, HOUR), HOUR, decided)
        assert whole.notional_between(*window) == cut.notional_between(*window), minute
    # The silence after the record at +1 min is vouched for while it lasts no longer than the
    # hour, then not: a recorder that stopped is unknown, not a quiet market.
    first_two = records[:2]
    answers = [book_fed(first_two, revealed_spans(first_two, HOUR), HOUR,
                        t + minute * MINUTE_MS).notional_between(*window)
               for minute in (30, 61, 62)]
    assert answers == [100_000.0 * 0.1, 100_000.0 * 0.1, None]


def _cut_file(tmp_path, decided_ms: int):
    """The forceOrder file as a recorder would have left it at `decided_ms`."""
    folder = tmp_path / f"cut_{decided_ms}"
    folder.mkdir()
    with FORCE_ORDERS.open(newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [rows[0], *(r for r in rows[1:] if len(r) == 12
                       and datetime_to_ms(datetime.fromisoformat(r[11])) <= decided_ms)]
    with (folder / FORCE_ORDERS.name).open("w", newline="") as handle:
        csv.writer(handle).writerows(kept)
    return load_liquidations(folder, SYMBOL, HOUR)


def test_the_whole_file_answers_as_the_file_cut_at_the_decision(tmp_path):
    whole = load_liquidations(LIQUIDATIONS, SYMBOL, HOUR)
    answers = []
    # Around the cascade of 2024-12-05 20:30 and the recorder's gap after 20:47.
    for decided in range(parse_utc("2024-12-05T19:30"), parse_utc("2024-12-05T22:00"),
                         10 * MINUTE_MS):
        cut = _cut_file(tmp_path, decided)
        at_whole = book_fed(whole.events, whole.reveals, HOUR, decided)
        at_cut = book_fed(cut.events, cut.reveals, HOUR, decided)
        for back in range(1, 7):
            window = (decided - back * M15, decided - (back - 1) * M15)
            answer = at_whole.notional_between(*window)
            assert answer == at_cut.notional_between(*window), (decided, back)
            answers.append(answer)
    assert any(a is None for a in answers) and any(a for a in answers)


def test_spans_merge_alike_in_any_order():
    """Covered spans in time order (a file's, merged at the end) and shuffled (merged by
    sorting) come to the same spans: touching and overlapping spans join, gaps stay."""
    import random

    def merged(spans):  # the plain rule: sort, then join what touches or overlaps
        out: list[list] = []
        for start, end in sorted(spans, key=lambda s: (s[0], s[1] is None, s[1] or 0)):
            if out and (out[-1][1] is None or start <= out[-1][1]):
                out[-1][1] = None if end is None or out[-1][1] is None else max(out[-1][1], end)
            else:
                out.append([start, end])
        return tuple(tuple(span) for span in out)

    rng = random.Random(5)
    for _ in range(300):
        spans = []
        for _ in range(rng.randrange(1, 12)):
            start = rng.randrange(0, 100)
            spans.append((start, None if rng.random() < 0.05 else start + rng.randrange(1, 15)))
        for order in (sorted(spans, key=lambda s: s[0]), rng.sample(spans, len(spans))):
            book = LiquidationBook(SimClock(1_000))
            for start, end in order:
                book.cover(start, end)
            assert book.spans() == merged(spans), order
