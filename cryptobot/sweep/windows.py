"""Walk-forward windows: `90d/30d` -> rolling (train, test) spans over the traded span."""

from __future__ import annotations

from dataclasses import dataclass

from cryptobot.data.timeframes import timeframe_to_ms
from cryptobot.errors import ConfigError


@dataclass(frozen=True)
class WalkForward:
    train_ms: int
    test_ms: int
    text: str


@dataclass(frozen=True)
class Window:
    index: int
    train: tuple[int, int]  # [start, end) ms
    test: tuple[int, int]


def parse_walk_forward(text: str) -> WalkForward:
    """'90d/30d' (any lengths like 12h, 2w) -> the training and test lengths."""
    train, slash, test = text.partition("/")
    try:
        if not slash:
            raise ValueError
        train_ms, test_ms = timeframe_to_ms(train.strip()), timeframe_to_ms(test.strip())
    except (ValueError, KeyError, ConfigError):
        raise ConfigError(f"--walk-forward {text!r}: expected TRAIN/TEST lengths like "
                          "90d/30d") from None
    if train_ms <= 0 or test_ms <= 0:
        raise ConfigError(f"--walk-forward {text!r}: both lengths must be positive")
    return WalkForward(train_ms, test_ms, text)


def windows_over(plan: WalkForward, start_ms: int, end_ms: int,
                 align_ms: int) -> list[Window]:
    """Windows rolling forward by the test length: train [t, t+TRAIN), test [t+TRAIN,
    t+TRAIN+TEST), while a whole test window fits before `end_ms`; edges on `align_ms` (the
    signal timeframe) so no window starts inside a signal candle."""
    windows, t = [], start_ms
    while True:
        train_end = _up(t + plan.train_ms, align_ms)
        test_end = _up(train_end + plan.test_ms, align_ms)
        if test_end > end_ms:
            break
        windows.append(Window(len(windows), (t, train_end), (train_end, test_end)))
        t = _up(t + plan.test_ms, align_ms)
    if not windows:
        raise ConfigError(f"--walk-forward {plan.text}: the data's traded span is shorter than "
                          "one training and one test window")
    return windows


def _up(ts_ms: int, step_ms: int) -> int:
    return -(-ts_ms // step_ms) * step_ms
