"""The collector held off inside events, its due passes run between them, CPython's way."""

from __future__ import annotations

import gc

import pytest

from cryptobot.runners.between_events_gc import CollectBetweenEvents


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    gc.set_threshold(50, 3, 2)
    yield
    gc.set_threshold(*before)


def test_off_inside_and_as_it_was_after(thresholds):
    assert gc.isenabled()
    with CollectBetweenEvents():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with CollectBetweenEvents():
            pass
        assert not gc.isenabled()  # was off: stays off
    finally:
        gc.enable()


def test_the_due_pass_is_the_oldest_generation_over_its_threshold(thresholds):
    with CollectBetweenEvents() as collector:
        gc.collect()
        collector.collect_due()
        assert collector.passes == [0, 0, 0]  # nothing allocated: nothing due
        kept = []
        ran = []
        while collector.passes[2] == 0:
            before = gc.get_count()
            kept.extend([[] for _ in range(60)])  # past the young threshold each round
            collector.collect_due()
            ran.append((before, list(collector.passes)))
        # a young pass each round; once four have run (the middle count 4, over 3) a middle
        # one instead; once three of those have (the oldest count 3, over 2) the oldest
        assert [passes for _, passes in ran[:6]] == [[1, 0, 0], [2, 0, 0], [3, 0, 0],
                                                     [4, 0, 0], [4, 1, 0], [5, 1, 0]]
        assert collector.passes == [12, 3, 1]
        # each generation's passes timed: in all, and the longest of them
        assert all(collector.pass_ns[g] >= collector.longest_ns[g] > 0 for g in range(3))
