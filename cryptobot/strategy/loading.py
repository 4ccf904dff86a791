"""Finding a strategy by its import path, validating its parameters, and calling its code.

Every call into user code goes through `guarded`, so a bug there ends in one clear error.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from cryptobot.config import Settings
from cryptobot.errors import ConfigError, CryptobotError, StrategyError, StrategyLoadError
from cryptobot.model import PositionSide
from cryptobot.strategy.api import (
    Decision,
    Enter,
    Reject,
    Strategy,
    StrategyContext,
    TargetContext,
)


def strategy_class(path: str) -> type[Strategy]:
    """Import "module:Class"; any failure is one StrategyLoadError line."""
    module_name, _, class_name = path.partition(":")
    if not module_name or not class_name:
        raise StrategyLoadError(f"strategy.path {path!r}: expected 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's to fix
        raise StrategyLoadError(
            f"strategy.path {path!r}: cannot import {module_name!r}: "
            f"{type(exc).__name__}: {exc}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyLoadError(
            f"strategy.path {path!r}: {module_name} has no Strategy subclass {class_name!r}")
    if not isinstance(cls.side, PositionSide):
        raise StrategyLoadError(f"strategy.path {path!r}: {class_name}.side is {cls.side!r}, "
                                "not PositionSide.LONG or PositionSide.SHORT")
    return cls


def strategy_params(cls: type[Strategy], values: Mapping[str, Any], source: str = "config"):
    """`[strategy.params]` checked against the strategy's declared `Params`."""
    try:
        return cls.Params.model_validate(dict(values))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(all)"
        message = ("unknown parameter of strategy " + cls.__name__
                   if first["type"] == "extra_forbidden"
                   else f"{first['msg']} (strategy {cls.__name__})")
        raise ConfigError(f"{source}: strategy.params.{key}: {message}") from None


def load_strategy(settings: Settings, symbol: str) -> Strategy:
    """Build the strategy that `[strategy]` names, for `symbol`, with its checked parameters."""
    cls = strategy_class(settings.strategy.path)
    params = strategy_params(cls, settings.strategy.params, settings.source or "config")
    return guarded(cls.__name__, "__init__", cls, params, symbol)


def decisions_of(strategy: Strategy, ctx: StrategyContext) -> list[Decision]:
    """`on_candle`'s answer, checked: a list (or tuple) of `Enter` and `Reject`."""
    name = type(strategy).__name__
    answer = guarded(name, "on_candle", lambda: _listed(strategy.on_candle(ctx)))
    wrong = [item for item in answer if not isinstance(item, Enter | Reject)]
    if wrong:
        raise StrategyError(f"strategy {name}.on_candle returned {type(wrong[0]).__name__}: "
                            "it must return a list of Enter and Reject")
    for item in answer:
        if not isinstance(item, Enter):
            continue
        if not math.isfinite(item.stop_price):
            raise StrategyError(f"strategy {name}.on_candle: Enter {item.signal_id} has the "
                                f"stop {item.stop_price} (an indicator still undefined?)")
        if not isinstance(item.side, PositionSide):
            raise StrategyError(f"strategy {name}.on_candle: Enter {item.signal_id} has the "
                                f"side {item.side!r}: use PositionSide.LONG or .SHORT")
    return answer


def targets_of(strategy: Strategy, ctx: TargetContext) -> tuple[float, ...] | None:
    """`exit_targets`' answer, checked: None, or one or two prices beyond the entry."""
    name = type(strategy).__name__
    answer = guarded(name, "exit_targets", strategy.exit_targets, ctx)
    if answer is None:
        return None
    targets = tuple(float(price) for price in answer)
    beyond = all(math.isfinite(p) and (p - ctx.entry_price) * ctx.side.sign > 0 for p in targets)
    if not 1 <= len(targets) <= 2 or not beyond:
        where = "above" if ctx.side is PositionSide.LONG else "below"
        raise StrategyError(f"strategy {name}.exit_targets returned {answer!r}: it must return "
                            f"None or one or two prices {where} the entry {ctx.entry_price} "
                            f"of a {ctx.side}")
    return targets


def _listed(answer: Any) -> list:
    if isinstance(answer, list | tuple) or inspect.isgenerator(answer):
        return list(answer)
    raise TypeError(f"on_candle returned {type(answer).__name__}, not a list of decisions")


def guarded(name: str, call: str, func: Callable[..., Any], *args: Any) -> Any:
    """Call user strategy code; its exceptions become one StrategyError line."""
    try:
        return func(*args)
    except CryptobotError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code may raise anything
        raise StrategyError(f"strategy {name}.{call} failed: {type(exc).__name__}: {exc}") from exc
