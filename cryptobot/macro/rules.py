"""The macro gate: a pure function from a point-in-time snapshot to ALLOW, REDUCE or BLOCK.

Three liquidity drains (cryptobot.macro.liquidity): QT active, the TGA absorbing, repo stress
on; and credit (cryptobot.macro.credit): worsening or not. The decision table, first row that
matches (config/default.toml and README say the same):

    credit worsening and at least one drain       BLOCK
    all three drains (credit holding or not)      BLOCK
    credit worsening, or one or two drains        REDUCE (size x reduce_size_factor)
    neither                                       ALLOW

A TGA or repo input that is too old or missing is "unused": it counts as no drain and is named
in the reasons. WALCL and credit are core: missing or too old, BLOCK with "stale macro data".
"""

from __future__ import annotations

from cryptobot.clock import iso_utc
from cryptobot.config import MacroSettings
from cryptobot.macro.credit import hyg_trend, judge_credit, oas_trend
from cryptobot.macro.findings import STALE_STATE, UNKNOWN, UNUSED, Findings
from cryptobot.macro.history import MacroHistory
from cryptobot.macro.liquidity import judge_qt, judge_repo, judge_tga, qt_state, report_rrp
from cryptobot.macro.snapshot import MacroSnapshot
from cryptobot.model import GateAction, GateDecision

__all__ = ["STALE", "STALE_STATE", "UNKNOWN", "MacroGate", "evaluate", "hyg_trend",
           "oas_trend", "qt_state"]

STALE = "stale macro data"


def evaluate(snapshot: MacroSnapshot, settings: MacroSettings) -> GateDecision:
    """The decision at `snapshot.asof_ms`, with its reasons and every input."""
    loaded = snapshot.funding_loaded
    found = Findings(snapshot.asof_ms, reasons=list(snapshot.notes))
    found.inputs["fetch_method"] = snapshot.fetch_method
    qt_active = judge_qt(snapshot.walcl, settings, found)
    credit_worsening, trend = judge_credit(snapshot, settings, found)
    tga = judge_tga(snapshot, settings, "WTREGEN" in loaded, found)
    stress = judge_repo(snapshot, settings, {"SOFR", "IORB"} <= loaded, found)
    report_rrp(snapshot.rrp, settings, found)
    found.inputs.update(
        hyg_trend=trend or UNKNOWN, tga_state=tga,
        repo_stress=UNUSED if stress is None else ("on" if stress else "off"),
        repo_calm=None if stress is None else not stress, unused=found.unused,
        funding={r.series_id: {**r.describe(), "age_days": found.age_days(r.observation_date)}
                 for r in snapshot.funding})
    if found.stale:
        return _stale_decision(snapshot, found)
    drains = [name for name, on in (("QT active", qt_active), ("TGA absorbing", tga ==
                                    "absorbing"), ("repo stress on", stress is True)) if on]
    found.inputs["drains"] = drains
    if credit_worsening and drains:
        action, factor, row = GateAction.BLOCK, 0.0, "credit worsening while liquidity drains"
    elif len(drains) == 3:
        action, factor, row = GateAction.BLOCK, 0.0, "all three liquidity points drain"
    elif credit_worsening or drains:
        action, factor = GateAction.REDUCE, settings.reduce_size_factor
        row = "liquidity drains, credit not worsening" if drains else \
            "credit worsening, no liquidity drain"
    else:
        action, factor, row = GateAction.ALLOW, 1.0, "no liquidity drain, credit not worsening"
    found.reasons.insert(0, f"{action.value} (size x{factor:g}): {row}: "
                         + _inputs_phrase(found, credit_worsening, tga, stress))
    return GateDecision(snapshot.asof_ms, action, factor, tuple(found.reasons), found.inputs)


def _inputs_phrase(found: Findings, credit_worsening: bool, tga: str,
                   stress: bool | None) -> str:
    """Every input by name, as the decision used it."""
    inputs = found.inputs
    credit = (f"credit {'worsening' if credit_worsening else 'not worsening'} "
              f"({inputs['credit_source']} trend {inputs['hyg_trend']})")
    repo = "repo stress unused" if stress is None else \
        ("repo stress on" if stress else "repo calm")
    return f"{inputs['qt_phrase']}; TGA {tga}; {repo}; {credit}"


def _stale_decision(snapshot: MacroSnapshot, found: Findings) -> GateDecision:
    stale = found.stale
    if not (snapshot.walcl or snapshot.hyg or snapshot.oas) and snapshot.first_published_ms:
        first_ms = min(snapshot.first_published_ms.values())
        stale = [f"no macro data before {iso_utc(first_ms)[:10]} (the first publication "
                 "of WALCL, HYG or the high-yield spread)"]
    found.reasons.insert(0, f"{STALE}: " + "; ".join(stale))
    return GateDecision(snapshot.asof_ms, GateAction.BLOCK, 0.0, tuple(found.reasons),
                        found.inputs)


class MacroGate:
    """The engine's gate: the series are precomputed once; each call is a binary search."""

    def __init__(self, history: MacroHistory, settings: MacroSettings) -> None:
        self.history = history
        self.settings = settings

    def snapshot(self, now_ms: int) -> MacroSnapshot:
        return self.history.snapshot_at(now_ms)

    def decide(self, now_ms: int) -> GateDecision:
        return evaluate(self.history.snapshot_at(now_ms), self.settings)
