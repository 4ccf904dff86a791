"""The cyclic garbage collector's passes moved out of the events, into the pauses between them.

Left automatic, a pass starts at whichever allocation crosses its threshold, often inside a
candle's handling, between a trigger and its order: in a live session of the latency
benchmark a young pass took ~70 µs, a middle one ~0.75 ms (34 in a 155-order session). While
a session runs the collector is off; `collect_due` runs the pass the automatic collector would
have run by now (the oldest generation whose count is over its threshold, as CPython picks
it) at a moment the caller chooses: once a candle's orders are out, and on the session's
timer ticks. Reference counting frees everything else as before; only garbage in cycles waits
until the next such moment (at most one tick). The rule is CPython 3.11-3.13's generational
one; from 3.14 the collector is incremental, its counts and thresholds mean other things, and
the collector is left as it is.
"""

from __future__ import annotations

import gc
import sys
import time
from types import TracebackType

# the generational rule `collect_due` follows (3.14's collector is incremental)
GENERATIONAL = sys.version_info < (3, 14)


class CollectBetweenEvents:
    """`with CollectBetweenEvents() as collector:` the collector off inside, as it was after;
    `collector.collect_due()` between events (where the rule is not known: nothing changed)."""

    def __init__(self) -> None:
        self.passes = [0, 0, 0]  # by generation, run here
        self.pass_ns = [0, 0, 0]  # their time, in all
        self.longest_ns = [0, 0, 0]  # the longest of them
        self._was_enabled = False

    def __enter__(self) -> CollectBetweenEvents:
        self._was_enabled = gc.isenabled()
        if GENERATIONAL:
            gc.disable()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._was_enabled:
            gc.enable()

    def collect_due(self) -> None:
        """The pass due, if any: the oldest generation whose count is over its threshold
        (CPython's rule; the oldest's extra condition, a quarter of the long-lived objects
        new, is not visible from Python: here it is collected at its count alone)."""
        if not GENERATIONAL:
            return
        counts, thresholds = gc.get_count(), gc.get_threshold()
        if not thresholds[0] or counts[0] <= thresholds[0]:
            return
        generation = max(g for g in range(3) if g == 0 or counts[g] > thresholds[g])
        started = time.perf_counter_ns()
        gc.collect(generation)
        took = time.perf_counter_ns() - started
        self.passes[generation] += 1
        self.pass_ns[generation] += took
        self.longest_ns[generation] = max(self.longest_ns[generation], took)
