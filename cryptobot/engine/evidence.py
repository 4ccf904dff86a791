"""The rebound's evidence per signal: the seed's signs that a cascade has run its course.

Measured by the engine for every signal that got as far as a spike (entered or rejected), with
what was published by the decision, and stored with it:

- open_interest: the strategy's own rule (`oi_change_pct` in its metrics, against its
  `oi_drop_pct` when it declares one, else any fall). The strategy requires it, not this module.
- liquidations: USDT liquidated (forced orders, both sides) in the spike candle's window against
  the median of the same window on each of the `liquidation_median_days` days before.
- funding_flushed: the last funding rate published by the decision, if it settled around the
  spike (at or after the spike minus one funding interval: the interval between that rate's
  settlement and the one before, 8h when unknown), is at or under `funding_flushed_rate` (a
  short's mirror: at or over its negative); an older rate says nothing about the spike.
- credit_holding: the macro gate's reading (`GateDecision.inputs`), its value HYG's close in %
  above the lowest close of the `macro.credit_low_days` days before (the high-yield spread
  standing in: in % under its highest).
- repo_calm: the gate's reading, its value SOFR - IORB in bps above the median of its recent
  range (stress at `macro.repo_stress_bps`).

Missing data is "unknown" (holds None), never "no": a window outside the liquidation source's
coverage, a median with a day not covered, no recent funding rate, a gate without the reading.
`[evidence] required_beyond_oi` items other than open interest must hold for an entry; unknown
ones do not count as holding.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptobot.clock import DAY_MS, HOUR_MS, iso_utc
from cryptobot.config import EvidenceSettings
from cryptobot.data.funding_times import DEFAULT_INTERVAL_MS, settlement_ms
from cryptobot.engine.liquidations import LiquidationBook
from cryptobot.model import EvidenceItem, GateDecision, PositionSide
from cryptobot.strategy.api import FundingView

OPEN_INTEREST = "open_interest"
LIQUIDATIONS = "liquidations"
FUNDING_FLUSHED = "funding_flushed"
CREDIT_HOLDING = "credit_holding"
REPO_CALM = "repo_calm"
ITEM_NAMES = (OPEN_INTEREST, LIQUIDATIONS, FUNDING_FLUSHED, CREDIT_HOLDING, REPO_CALM)

# How a refusal names an item that does not hold: (what, when it is "no").
_PHRASES = {LIQUIDATIONS: ("liquidations", "not elevated"), FUNDING_FLUSHED: ("funding",
            "not flushed"), CREDIT_HOLDING: ("credit", "not holding"),
            REPO_CALM: ("funding markets", "not calm"), OPEN_INTEREST: ("open interest",
                                                                         "did not fall")}


@dataclass(frozen=True)
class SpikeWindow:
    """The signal being judged: its spike candle's window and direction, and when it is decided."""

    spike_ms: int
    window_ms: int
    side: PositionSide
    decided_ms: int


def measure_evidence(settings: EvidenceSettings, spike: SpikeWindow,
                     metrics: Mapping[str, float | None], oi_drop_pct: float,
                     liquidations: LiquidationBook, funding: FundingView,
                     gate: GateDecision) -> tuple[EvidenceItem, ...]:
    return (open_interest_item(metrics.get("oi_change_pct"), oi_drop_pct),
            liquidation_item(settings, spike, liquidations),
            funding_item(settings, spike, funding),
            credit_item(gate), repo_item(gate))


def evidence_refusal(items: Sequence[EvidenceItem], required: int) -> str | None:
    """Why an entry is refused for want of evidence beyond open interest, or None."""
    beyond = [item for item in items if item.name != OPEN_INTEREST]
    holding = sum(item.holds is True for item in beyond)
    if required <= 0 or holding >= required:
        return None
    missing = ", ".join(_missing(item) for item in beyond if item.holds is not True)
    return f"evidence {holding} of {required} required beyond open interest: {missing}"


def _missing(item: EvidenceItem) -> str:
    what, no = _PHRASES.get(item.name, (item.name, "does not hold"))
    return f"{what} {'unknown' if item.holds is None else no} ({item.detail})"


def open_interest_item(change_pct: float | None, drop_pct: float) -> EvidenceItem:
    if change_pct is None:
        return EvidenceItem(OPEN_INTEREST, None, None, "no open-interest data")
    return EvidenceItem(OPEN_INTEREST, change_pct, change_pct <= -drop_pct,
                        f"{change_pct:+.2f}% through the spike, needs <= -{drop_pct:g}%")


def liquidation_item(settings: EvidenceSettings, spike: SpikeWindow,
                     book: LiquidationBook) -> EvidenceItem:
    start, end = spike.spike_ms, spike.spike_ms + spike.window_ms
    window = f"{iso_utc(start)[11:16]}-{iso_utc(end)[11:16]}"
    notional = book.notional_between(start, end)
    if notional is None:
        return EvidenceItem(LIQUIDATIONS, None, None,
                            f"no liquidation data covers the spike window {window}")
    days = settings.liquidation_median_days
    before = [book.notional_between(start - d * DAY_MS, end - d * DAY_MS)
              for d in range(1, days + 1)]
    known = [value for value in before if value is not None]
    if len(known) < days:
        return EvidenceItem(LIQUIDATIONS, None, None,
                            f"{_usd(notional)} in the spike window {window}, no median yet: data "
                            f"covers it on {len(known)} of the {days} days before")
    median = statistics.median(known)
    if median <= 0:
        return EvidenceItem(LIQUIDATIONS, None, notional > 0,
                            f"{_usd(notional)} in the spike window, none in it on the {days} "
                            "days before")
    ratio = notional / median
    return EvidenceItem(LIQUIDATIONS, ratio, ratio >= settings.liquidation_ratio,
                        f"{_usd(notional)} in the spike window {window}, {ratio:.1f}x the "
                        f"{days}-day median {_usd(median)}, needs {settings.liquidation_ratio:g}x")


def funding_item(settings: EvidenceSettings, spike: SpikeWindow,
                 funding: FundingView) -> EvidenceItem:
    rate = funding.last_at_or_before(spike.decided_ms)
    if rate is None:
        return EvidenceItem(FUNDING_FLUSHED, None, None, "no funding rate published yet")
    settled_ms = settlement_ms(rate.ts_ms)
    interval_ms = funding_interval_ms(funding, settled_ms)
    if settled_ms < spike.spike_ms - interval_ms:
        return EvidenceItem(FUNDING_FLUSHED, rate.rate, None,
                            f"no rate settled since {iso_utc(spike.spike_ms - interval_ms)[:16]} "
                            f"(one {interval_ms / HOUR_MS:g}h interval before the spike): the "
                            f"last one settled {iso_utc(settled_ms)[:16]}")
    limit = settings.funding_flushed_rate
    if spike.side is PositionSide.LONG:
        holds, needs = rate.rate <= limit, f"<= {limit * 100:+.4f}%"
    else:
        holds, needs = rate.rate >= -limit, f">= {-limit * 100:+.4f}%"
    return EvidenceItem(FUNDING_FLUSHED, rate.rate, holds,
                        f"last rate {rate.rate * 100:+.4f}% at {iso_utc(rate.ts_ms)[:16]}, "
                        f"flushed at {needs}")


def funding_interval_ms(funding: FundingView, settled_ms: int) -> int:
    """The interval that ended at a settlement: since the settlement before it (8h when there
    is none, or when the one before lies further back: a hole in the data)."""
    before = funding.last_at_or_before(settled_ms - 1)
    if before is None:
        return DEFAULT_INTERVAL_MS
    gap_ms = settled_ms - settlement_ms(before.ts_ms)
    return gap_ms if 0 < gap_ms <= DEFAULT_INTERVAL_MS else DEFAULT_INTERVAL_MS


def credit_item(gate: GateDecision) -> EvidenceItem:
    measured = gate.inputs.get("credit_low")
    margin = measured.get("margin_pct") if isinstance(measured, dict) else None
    if margin is None or not isinstance(measured, dict):
        return gate_item(CREDIT_HOLDING, gate, None, "HYG (or the high-yield spread) against its "
                         "recent low")
    kind, days = measured["kind"], measured["days"]
    where = "above" if kind == "low" else "under"
    unit = "%" if kind == "high" else ""
    return gate_item(CREDIT_HOLDING, gate, margin,
                     f"{measured['series']} {measured['value']:.2f}{unit} on "
                     f"{measured['observation_date']}, {margin:+.2f}% {where} its {days}-day "
                     f"{kind} {measured['extreme']:.2f}{unit}")


def repo_item(gate: GateDecision) -> EvidenceItem:
    repo = gate.inputs.get("repo")
    excess = repo.get("excess_bps") if isinstance(repo, dict) else None
    if excess is None or not isinstance(repo, dict):
        return gate_item(REPO_CALM, gate, None, "repo stress (SOFR - IORB) against its range")
    return gate_item(REPO_CALM, gate, excess,
                     f"SOFR - IORB {repo['spread_bps']:+.0f} bps on {repo['observation_date']}, "
                     f"{excess:+.1f} bps from its {repo['range_days']}-day median "
                     f"{repo['range_median_bps']:+.1f} bps, stress at "
                     f"+{repo['stress_at_bps']:g} bps")


def gate_item(name: str, gate: GateDecision, value: float | None,
              measured: str) -> EvidenceItem:
    """The gate's yes/no for `name`, with the number it came from (`measured` names it)."""
    reading = gate.inputs.get(name)
    if not isinstance(reading, bool):
        return EvidenceItem(name, None, None, "the gate gives no reading")
    return EvidenceItem(name, value, reading,
                        f"macro gate: {measured}: {'yes' if reading else 'no'}")


def _usd(notional: float) -> str:
    if notional >= 1e6:
        return f"${notional / 1e6:.2f}M"
    return f"${notional / 1e3:.1f}k"
