"""The summary says in words which costs a simulation included."""

from cryptobot.config import CostSettings
from cryptobot.report.summary import cost_notes


def test_funding_note_names_the_case():
    assert cost_notes(CostSettings(funding=False), True)["funding_note"].endswith(
        "off in config (costs.funding = false)")
    assert cost_notes(CostSettings(), False)["funding_note"].endswith("no funding data in the span")
    assert cost_notes(CostSettings(), True)["funding_note"].startswith("charged every 8h")


def test_a_mark_price_trigger_is_said_to_be_simulated_on_last_price():
    assert "stop_trigger_note" not in cost_notes(CostSettings(), True)
    note = cost_notes(CostSettings(stop_trigger="mark"), True)["stop_trigger_note"]
    assert "mark price is not simulated" in note
