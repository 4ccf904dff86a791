"""The summary says in words which costs a simulation included, and exactly which funding."""

from cryptobot.clock import HOUR_MS
from cryptobot.config import CostSettings
from cryptobot.report.summary import FundingFacts, cost_notes

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
FILE = "binance_um_BTCUSDT_funding_8h.csv"


def test_funding_note_names_the_case():
    some = FundingFacts.of(FILE, (T0, T0 + 8 * HOUR_MS), (T0 + 8 * HOUR_MS,))
    off = cost_notes(CostSettings(funding=False), some)
    assert off["funding_note"].endswith("off in config (costs.funding = false)")
    assert off["funding_rates_charged"] == 0
    assert cost_notes(CostSettings(), FundingFacts())["funding_note"] == (
        "not charged: no funding rate settled in the span (no funding data)")
    none_held = cost_notes(CostSettings(), FundingFacts.of(FILE, (T0, T0 + 8 * HOUR_MS), ()))
    assert none_held["funding_note"] == (
        f"not charged: no position was held at any of the 2 settlements in the span ({FILE})")
    assert none_held["funding_rates_charged"] == 0


def test_funding_note_counts_the_rates_charged_off_the_grid_and_the_intervals():
    settled = (T0, T0 + 8 * HOUR_MS + 1, T0 + 12 * HOUR_MS, T0 + 16 * HOUR_MS + 2_000,
               T0 + 20 * HOUR_MS)
    notes = cost_notes(CostSettings(), FundingFacts.of(FILE, settled, settled[1:4]))
    assert notes["funding_note"] == (
        f"from 3 rates (of 5 settled in the span), {FILE}; 1 off the 8h grid, 2 stamped off "
        "the hour; intervals 8h/4h")
    assert (notes["funding_rates_charged"], notes["funding_rates_in_span"]) == (3, 5)
    assert notes["funding_source"] == FILE


def test_a_mark_price_trigger_is_said_to_be_simulated_on_last_price():
    assert "stop_trigger_note" not in cost_notes(CostSettings(), FundingFacts())
    note = cost_notes(CostSettings(stop_trigger="mark"), FundingFacts())["stop_trigger_note"]
    assert "mark price is not simulated" in note


def test_a_run_of_two_symbols_names_each_ones_intervals():
    btc = FundingFacts.of("btc.csv", [T0 + h * HOUR_MS for h in (0, 8, 16)], [T0 + 8 * HOUR_MS])
    eth = FundingFacts.of("eth.csv", [T0 + h * HOUR_MS for h in (0, 4, 8)], [T0 + 4 * HOUR_MS])
    note = cost_notes(CostSettings(), FundingFacts.combined([btc, eth]))["funding_note"]
    assert note == ("from 2 rates (of 6 settled in the span), btc.csv; eth.csv; 1 off the 8h "
                    "grid, 0 stamped off the hour; intervals 8h/4h")
