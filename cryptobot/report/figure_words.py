"""Summary figures in words and units, as a trader reads them: ("Net PnL", "-2.27 USDT (-0.02%
of starting equity)"), not ("total pnl usdt", "-2.27"). Pairs that say one thing (a sum and its
percentage, a count and its part) share a row; a key this table does not know still reads as
words with the unit its suffix names (`_ms`: a time, in ISO UTC). A figure without a value
(None) has no row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptobot.clock import iso_utc

Figures = dict[str, Any]


def _usdt(value: float) -> str:
    return f"{value:,.2f} USDT"


def _signed_usdt(value: float) -> str:
    return f"{value:+,.2f} USDT"


def _pct(value: float) -> str:
    return f"{value:,.2f}%"


def _counts(value: dict[str, Any]) -> str:
    return ", ".join(f"{str(name).replace('_', ' ')}: {count}"
                     for name, count in value.items()) or "none"


def _pnl(f: Figures) -> str:
    text = _signed_usdt(f["total_pnl_usdt"])
    if f.get("total_pnl_pct") is not None:
        text += f" ({f['total_pnl_pct']:+,.2f}% of starting equity)"
    return text


def _drawdown(f: Figures) -> str:
    text = _usdt(f["max_drawdown_usdt"])
    return text + (f" ({_pct(f['max_drawdown_pct'])})" if "max_drawdown_pct" in f else "")


def _win_rate(f: Figures) -> str:
    return f"{_pct(f['win_rate_pct'])} ({f.get('wins', '?')} of {f.get('trades', '?')} trades won)"


def _profit_factor(f: Figures) -> str:
    value = f["profit_factor"]
    if value is None:
        return "- (no losing trade)" if f.get("wins", 1) else "- (no winning or losing trade)"
    return f"{value:,.2f}"


def _signals(f: Figures) -> str:
    entered = f.get("signals_entered")
    return f"{f['signals']}" + (f" ({entered} entered)" if entered is not None else "")


def _oi(f: Figures) -> str:
    return f"{f['oi_samples']:,}" + (" (SYNTHETIC, hand-built)" if f.get("oi_synthetic") else "")


def _position_at_end(f: Figures) -> str:
    held = f.get("open_position")
    if not held:  # a paper or live run describes it in words
        if not f.get("open_position_at_end"):
            return "flat"
        return str(f.get("open_position_detail") or "open (not described)")
    unrealised = held.get("unrealised_pnl_usdt")
    text = (f"{held.get('side', '?')} {held.get('qty', 0):g} from {held.get('entry_time', '?')} "
            f"at {held.get('entry_price', 0):,.2f}, stop {held.get('stop_price') or 0:,.2f}")
    if unrealised is not None:
        text += f"; unrealised {_signed_usdt(unrealised)} at {held.get('last_price', 0):,.2f}"
    return text


# key: (label, how the value reads). Keys a row already covers are in COVERED.
WORDS: dict[str, tuple[str, Callable[[Figures], str]]] = {
    "trades": ("Trades", lambda f: f"{f['trades']}"),
    "win_rate_pct": ("Win rate", _win_rate),
    "total_pnl_usdt": ("Net PnL (after fees and funding)", _pnl),
    "max_drawdown_usdt": ("Max drawdown, closed trades only", _drawdown),
    "profit_factor": ("Profit factor (gross wins / gross losses)", _profit_factor),
    "average_r": ("Average trade in R (multiples of its initial risk)",
                  lambda f: f"{f['average_r']:+.2f} R"),
    "exposure_pct": ("Time in a position", lambda f: f"{_pct(f['exposure_pct'])} of the run"),
    "fees_usdt": ("Fees paid", lambda f: _usdt(f["fees_usdt"])),
    "funding_usdt": ("Funding paid (negative: received)", lambda f: _usdt(f["funding_usdt"])),
    "funding_note": ("Funding", lambda f: str(f["funding_note"])),
    "funding_charged": ("Funding charged", lambda f: "yes" if f["funding_charged"] else "no"),
    "stop_trigger_note": ("Stop trigger", lambda f: str(f["stop_trigger_note"])),
    "buy_and_hold_pct": ("Buy and hold over the same span",
                         lambda f: "-" if f["buy_and_hold_pct"] is None
                         else f"{f['buy_and_hold_pct']:+,.2f}%"),
    "starting_equity_usdt": ("Starting equity", lambda f: _usdt(f["starting_equity_usdt"])),
    "final_equity_usdt": ("Final equity", lambda f: _usdt(f["final_equity_usdt"])),
    "signals": ("Signals", _signals),
    "rejections": ("Signals rejected, by reason", lambda f: _counts(f["rejections"])),
    "refused_by_portfolio_caps": ("Signals refused by the portfolio caps",
                                  lambda f: f"{f['refused_by_portfolio_caps']}"),
    "exit_reasons": ("Exits, by reason", lambda f: _counts(f["exit_reasons"])),
    "oi_samples": ("Open interest samples", _oi),
    "open_position_at_end": ("Position at the end", _position_at_end),
    "open_position_detail": ("Position at the end", lambda f: str(f["open_position_detail"])),
    "stopped_ms": ("Stopped at", lambda f: iso_utc(f["stopped_ms"])),
    "stopped_early": ("Stopped early, by", lambda f: str(f["stopped_early"])),
}
SAYS_NONE = {"profit_factor"}  # None is a value with words: every other None has no row
COVERED = {"wins", "total_pnl_pct", "max_drawdown_pct", "signals_entered", "oi_synthetic",
           "open_position"}


def figure_rows(figures: Figures) -> list[tuple[str, str]]:
    """(label, value) rows in the figures' order; `funding_charged` only when no note says it,
    the position's words only where no `open_position_at_end` row says them, none for None."""
    skip = set(COVERED)
    if "funding_note" in figures:
        skip.add("funding_charged")
    if "open_position_at_end" in figures:
        skip.add("open_position_detail")
    rows = []
    for key, value in figures.items():
        if key in skip or (value is None and key not in SAYS_NONE):
            continue
        if key in WORDS:
            label, words = WORDS[key]
            rows.append((label, words(figures)))
        else:
            rows.append(unknown_row(key, value))
    return rows


UNIT_SUFFIXES = {"_usdt": " USDT", "_pct": "%", "_ms": ""}


def unknown_row(key: str, value: Any) -> tuple[str, str]:
    """A figure this module has no words for: its key as words, its unit from the suffix (a
    time for `_ms`)."""
    unit = next((suffix for suffix in UNIT_SUFFIXES if key.endswith(suffix)), "")
    label = key.removesuffix(unit).replace("_", " ").strip().capitalize() or key
    if value is None:
        return label, "-"
    if isinstance(value, bool):
        return label, "yes" if value else "no"
    if isinstance(value, dict):
        return label, _counts(value)
    if unit == "_ms" and isinstance(value, int):
        return label, iso_utc(value)
    if isinstance(value, float):
        return label, f"{value:,.2f}{UNIT_SUFFIXES.get(unit, '')}"
    return label, f"{value}{UNIT_SUFFIXES.get(unit, '') if isinstance(value, int) else ''}"
