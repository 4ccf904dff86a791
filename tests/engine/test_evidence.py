"""The rebound's evidence items (engine/evidence.py) measured on real data: the Binance forceOrder
records of December 2024 (data/liquidations, with the recorder's gap from 2024-12-05 20:47 to
2024-12-06 18:08 UTC) and the real 8h funding rates of the 14-month BTC folder."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import pytest

from cryptobot.clock import DAY_MS, SimClock, datetime_to_ms, parse_utc
from cryptobot.config import EvidenceSettings
from cryptobot.data.liquidation_files import load_liquidations
from cryptobot.data.readers import read_market_file
from cryptobot.engine.evidence import (
    SpikeWindow,
    credit_item,
    evidence_refusal,
    funding_item,
    liquidation_item,
    open_interest_item,
    repo_item,
)
from cryptobot.engine.gate import PassThroughGate
from cryptobot.engine.liquidations import LiquidationBook
from cryptobot.engine.market_view import PointInTimeBook
from cryptobot.macro import build_gate
from cryptobot.model import EvidenceItem, FundingRate, GateAction, GateDecision, PositionSide
from tests.engine.conftest import settings_with

REPO = Path(__file__).resolve().parents[2]
LIQUIDATIONS = REPO / "data" / "liquidations"
FORCE_ORDERS = LIQUIDATIONS / "binance_forceOrder_BTCUSDT_2024-12.csv"
FUNDING = (REPO / "data" / "btc_5m_2023-11_2024-12"
           / "binance_um_BTCUSDT_funding_8h_2023-11_2024-12.csv")
SYMBOL = "BTC/USDT:USDT"
M15 = 15 * 60_000
HOUR = 60 * 60_000
ONE_DAY_MEDIAN = EvidenceSettings(liquidation_median_days=1)


@pytest.fixture(scope="module")
def records():
    return load_liquidations(LIQUIDATIONS, SYMBOL, HOUR)


def book_at(records, now_ms: int) -> LiquidationBook:
    book = LiquidationBook(SimClock(now_ms))
    for event, (start_ms, end_ms) in zip(records.events, records.reveals, strict=True):
        book.cover(start_ms, end_ms, event.ts_ms, records.gap_ms)
        book.add(event)
    return book


def raw_notional(start_ms: int, end_ms: int) -> float:
    """Average price x filled quantity of the file's forceOrder rows traded in the window, read
    straight from the CSV (independently of the reader)."""
    total = 0.0
    with FORCE_ORDERS.open(newline="") as handle:
        for row in list(csv.reader(handle))[1:]:
            if len(row) == 12 and start_ms <= datetime_to_ms(
                    datetime.fromisoformat(row[11])) < end_ms:
                total += float(row[6]) * float(row[9])
    return total


def spike(at: str, decided: str, side=PositionSide.LONG) -> SpikeWindow:
    return SpikeWindow(parse_utc(at), M15, side, parse_utc(decided))


def test_the_reader_keeps_the_force_orders_and_knows_the_gap(records):
    assert len(records.events) == 1844 and records.other_rows == 573
    assert records.events[0].ts_ms == parse_utc("2024-12-04T16:46:25.584")  # IST 22:16:25.584
    assert {e.side for e in records.events} == {"buy", "sell"}
    assert all(a.ts_ms <= b.ts_ms for a, b in zip(records.events, records.events[1:], strict=False))
    gap = (parse_utc("2024-12-05T20:48"), parse_utc("2024-12-06T17:30"))
    assert not any(a < gap[1] and b > gap[0] for a, b in records.spans)
    assert records.spans[0][0] == records.events[0].ts_ms
    assert records.spans[-1][1] == records.events[-1].ts_ms + 1


def test_a_record_in_two_overlapping_files_is_one_liquidation(records, tmp_path):
    """Two recorders' dumps: the whole file, and its first 900 records again under another
    name (one of them twice over): the same liquidations, spans and reveals as the file alone,
    and the copies counted."""
    lines = FORCE_ORDERS.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / FORCE_ORDERS.name).write_text("".join(lines), encoding="utf-8")
    copied = lines[:901] + [lines[500]]
    (tmp_path / "second_recorder.csv").write_text("".join(copied), encoding="utf-8")
    both = load_liquidations(tmp_path, SYMBOL, HOUR)
    assert (both.events, both.spans, both.reveals) == (records.events, records.spans,
                                                        records.reveals)
    assert both.duplicates == 901 and len(both.sources) == 2
    assert "901 records read twice counted once" in both.describe()
    assert records.duplicates == 0


def test_liquidations_hold_in_a_real_cascade_window(records):
    book = book_at(records, parse_utc("2024-12-07"))
    item = liquidation_item(ONE_DAY_MEDIAN, spike("2024-12-05T20:30", "2024-12-05T21:00"), book)
    start = parse_utc("2024-12-05T20:30")
    expected = raw_notional(start, start + M15) / raw_notional(start - DAY_MS, start - DAY_MS + M15)
    assert item.holds is True and item.value == pytest.approx(expected, rel=1e-9)
    assert item.value > 10  # $3.06M against $0.17M the day before


def test_liquidations_below_their_median_do_not_hold(records):
    book = book_at(records, parse_utc("2024-12-07"))
    item = liquidation_item(ONE_DAY_MEDIAN, spike("2024-12-05T20:00", "2024-12-05T20:30"), book)
    start = parse_utc("2024-12-05T20:00")
    expected = raw_notional(start, start + M15) / raw_notional(start - DAY_MS, start - DAY_MS + M15)
    assert item.holds is False and item.value == pytest.approx(expected, rel=1e-9)
    assert item.value < 1


def test_a_spike_inside_the_recorders_gap_is_unknown_not_quiet(records):
    book = book_at(records, parse_utc("2024-12-07"))
    item = liquidation_item(ONE_DAY_MEDIAN, spike("2024-12-05T22:15", "2024-12-05T22:45"), book)
    assert item.holds is None and item.value is None
    assert "no liquidation data covers the spike window 22:15-22:30" in item.detail


def test_no_median_yet_while_the_days_before_are_not_covered(records):
    book = book_at(records, parse_utc("2024-12-07"))
    first_day = liquidation_item(ONE_DAY_MEDIAN, spike("2024-12-04T20:30", "2024-12-04T21:00"),
                                 book)
    assert first_day.holds is None and "covers it on 0 of the 1 days before" in first_day.detail
    week = liquidation_item(EvidenceSettings(), spike("2024-12-05T20:30", "2024-12-05T21:00"),
                            book)
    assert week.holds is None and "covers it on 1 of the 7 days before" in week.detail


def test_liquidations_are_point_in_time(records):
    window = spike("2024-12-05T20:30", "2024-12-05T20:40")
    before_close = book_at(records, parse_utc("2024-12-05T20:40"))
    assert liquidation_item(ONE_DAY_MEDIAN, window, before_close).holds is None
    seen = before_close.between(parse_utc("2024-12-05T20:30"), parse_utc("2024-12-05T21:00"))
    later = [e for e in records.events
             if parse_utc("2024-12-05T20:40") < e.ts_ms < parse_utc("2024-12-05T20:45")]
    assert seen and later and max(e.ts_ms for e in seen) <= parse_utc("2024-12-05T20:40")
    at_close = book_at(records, parse_utc("2024-12-05T20:45"))
    assert liquidation_item(ONE_DAY_MEDIAN, window, at_close).holds is True


def test_a_stream_covers_from_its_start_on():
    clock = SimClock(parse_utc("2024-12-05T12:00"))
    book = LiquidationBook(clock)
    assert book.notional_between(parse_utc("2024-12-05T11:00"), parse_utc("2024-12-05T11:15")) \
        is None
    book.listening_since(parse_utc("2024-12-05T11:00"))
    assert book.notional_between(parse_utc("2024-12-05T11:00"), parse_utc("2024-12-05T11:15")) \
        == 0.0  # listened, nothing liquidated: a quiet market
    assert book.notional_between(parse_utc("2024-12-05T10:45"), parse_utc("2024-12-05T11:15")) \
        is None


@pytest.fixture(scope="module")
def funding_book():
    frame = read_market_file(FUNDING).frame
    return [FundingRate(int(ts), float(rate))
            for ts, rate in zip(frame["ts_ms"], frame["rate"], strict=True)]


def funding_at(rates, decided: str) -> PointInTimeBook[FundingRate]:
    book = PointInTimeBook(SimClock(parse_utc(decided)))
    for rate in rates:
        book.add(rate.ts_ms, rate)
    return book


def test_funding_not_flushed_at_the_december_crash(funding_book):
    decided = "2024-12-05T22:45"
    book = funding_at(funding_book, decided)
    item = funding_item(EvidenceSettings(), spike("2024-12-05T22:15", decided), book)
    rate = book.last_at_or_before(parse_utc(decided))
    assert rate.ts_ms == parse_utc("2024-12-05T16:00")
    assert item.holds is False and item.value == rate.rate > 0


def test_funding_flushed_when_the_real_rate_turned_negative(funding_book):
    negative = next(r for r in funding_book if r.rate < 0)  # 2024-04-18 16:00
    decided = negative.ts_ms + HOUR
    book = funding_at(funding_book, "2024-04-18T17:00")
    assert decided == parse_utc("2024-04-18T17:00")
    item = funding_item(EvidenceSettings(), SpikeWindow(decided - 2 * M15, M15,
                                                        PositionSide.LONG, decided), book)
    assert item.holds is True and item.value == negative.rate
    short = funding_item(EvidenceSettings(), SpikeWindow(decided - 2 * M15, M15,
                                                         PositionSide.SHORT, decided), book)
    assert short.holds is False  # a short's squeeze flushes the shorts: a rate at or over 0


def test_funding_is_measured_around_the_spike_not_before_it(funding_book):
    """The real 8h rates: a rate counts if it settled at or after the spike minus one interval;
    the 16:00 rate is 'around' a spike at 23:00 (7h before), not one at 00:30 the next day
    decided before the 00:00 rate is published (8.5h before), which is unknown."""
    at_23 = funding_item(EvidenceSettings(), spike("2024-12-05T23:00", "2024-12-05T23:30"),
                         funding_at(funding_book, "2024-12-05T23:30"))
    assert at_23.holds is False and "at 2024-12-05T16:00" in at_23.detail
    book = funding_at([r for r in funding_book if r.ts_ms < parse_utc("2024-12-06")],
                      "2024-12-06T00:45")  # the 00:00 rate not published by the decision
    late = funding_item(EvidenceSettings(), spike("2024-12-06T00:30", "2024-12-06T00:45"), book)
    assert late.holds is None and late.detail == (
        "no rate settled since 2024-12-05T16:30 (one 8h interval before the spike): the last "
        "one settled 2024-12-05T16:00")


def test_funding_around_the_spike_on_a_4h_interval():
    """SYNTHETIC rates every 4h (Binance in a volatile market): the interval is the gap to the
    settlement before, so a rate 5h before the spike is not around it."""
    rates = [FundingRate(parse_utc("2024-12-05T08:00") + k * 4 * HOUR + 7, -0.0001 * k, SYMBOL)
             for k in range(4)]  # 08:00, 12:00, 16:00, 20:00 (stamped 7 ms late)
    book = funding_at(rates[:3], "2024-12-05T21:30")
    item = funding_item(EvidenceSettings(), spike("2024-12-05T21:00", "2024-12-05T21:30"), book)
    assert item.holds is None and "one 4h interval" in item.detail
    book = funding_at(rates, "2024-12-05T21:30")
    item = funding_item(EvidenceSettings(), spike("2024-12-05T21:00", "2024-12-05T21:30"), book)
    assert item.holds is True and item.value == pytest.approx(-0.0003)


def test_funding_unknown_without_a_recent_rate(funding_book):
    decided = "2025-01-05T00:00"  # the file ends 2024-12-30 16:00
    item = funding_item(EvidenceSettings(), spike("2025-01-04T23:00", decided),
                        funding_at(funding_book, decided))
    assert item.holds is None and "no rate settled since 2025-01-04T15:00" in item.detail
    assert funding_item(EvidenceSettings(), spike("2020-01-01T00:00", "2020-01-01T01:00"),
                        funding_at([], "2020-01-01T01:00")).holds is None


def test_open_interest_item_uses_the_strategys_threshold():
    assert open_interest_item(-3.19, 1.5).holds is True
    assert open_interest_item(-0.6, 1.5).holds is False
    unknown = open_interest_item(None, 1.5)
    assert unknown.holds is None and unknown.value is None


def test_credit_and_repo_without_their_numbers_keep_the_gates_reading():
    gate = GateDecision(0, GateAction.ALLOW, 1.0, ("test",),
                        {"credit_holding": True, "repo_calm": False})
    assert credit_item(gate).holds is True and credit_item(gate).value is None
    assert repo_item(gate).holds is False
    passing = PassThroughGate().decide(0)
    assert credit_item(passing).holds is None and credit_item(passing).value is None
    odd = GateDecision(0, GateAction.ALLOW, 1.0, (), {"repo_calm": "unknown"})
    assert repo_item(odd).holds is None


@pytest.mark.parametrize("day", ["2022-09-30", "2024-12-05", "2026-01-15"])
def test_credit_and_repo_store_the_numbers_the_real_gate_measured(day):
    """The bundled FRED and HYG series (data/macro): each item's value is the gate's own
    measurement, computed again here from the gate's inputs."""
    settings = settings_with()
    gate = build_gate(settings, SimClock(parse_utc(day)))
    decision = gate.decide(parse_utc(day) + 14 * HOUR)
    inputs = decision.inputs
    credit, repo = credit_item(decision), repo_item(decision)
    source = inputs["hyg"] if inputs["credit_source"] == "HYG" else inputs["oas"]
    if inputs["credit_source"] == "HYG":
        expected = (source["value"] / source["prior_low"] - 1) * 100
    else:
        expected = (1 - source["value"] / source["prior_high"]) * 100
    assert credit.value == pytest.approx(expected) and credit.holds is (credit.value >= 0)
    assert f"{abs(expected):.2f}% " in credit.detail and source["observation_date"] in credit.detail
    if inputs["repo_calm"] is None:
        assert repo.value is None and repo.holds is None
    else:
        excess = inputs["repo"]["spread_bps"] - inputs["repo"]["range_median_bps"]
        assert repo.value == pytest.approx(excess)
        assert repo.holds is (excess < settings.macro.repo_stress_bps)
        assert f"{excess:+.1f} bps from its" in repo.detail


def test_refusal_counts_only_items_that_hold_beyond_open_interest():
    items = (EvidenceItem("open_interest", -3.0, True, "-3.00%"),
             EvidenceItem("liquidations", None, None, "no data"),
             EvidenceItem("funding_flushed", 0.0001, False, "last rate +0.0100%"),
             EvidenceItem("credit_holding", None, True, "yes"))
    assert evidence_refusal(items, 0) is None
    assert evidence_refusal(items, 1) is None
    assert evidence_refusal(items, 2) == (
        "evidence 1 of 2 required beyond open interest: liquidations unknown (no data), "
        "funding not flushed (last rate +0.0100%)")


def test_an_item_reads_back_from_its_stored_shape():
    item = EvidenceItem("liquidations", 18.2, True, "$3.06M")
    assert EvidenceItem.from_dict(item.as_dict()) == item
    assert EvidenceItem("x", float("inf"), None, "").as_dict()["value"] is None


def test_a_long_run_forgets_old_liquidations_as_unknown(records):
    clock = SimClock(parse_utc("2024-12-04T16:00"))
    book = LiquidationBook(clock)
    book.retain(DAY_MS // 2)
    book.listening_since(clock.now_ms())
    first = records.events[0]
    book.add(first)
    window = (parse_utc("2024-12-04T16:45"), parse_utc("2024-12-04T17:00"))
    clock.advance_to(parse_utc("2024-12-05T00:00"))
    assert book.notional_between(*window) == first.price * first.qty_base
    clock.advance_to(parse_utc("2024-12-06T18:15"))  # more than a day past what it keeps
    book.add(records.events[-1])
    assert book.notional_between(*window) is None  # forgotten: unknown, not "none"
    assert book.spans() == ((parse_utc("2024-12-06T06:15"), None),)
    assert book.between(parse_utc("2024-12-06T18:00"), parse_utc("2024-12-06T18:15")) == \
        [records.events[-1]]
