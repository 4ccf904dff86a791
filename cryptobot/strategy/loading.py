"""Finding a strategy by its import path, validating its parameters, and calling its code.

Every call into user code goes through `guarded`, so a bug there ends in one clear error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from cryptobot.config import Settings
from cryptobot.errors import ConfigError, CryptobotError, StrategyError, StrategyLoadError
from cryptobot.strategy.api import Strategy


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


def guarded(name: str, call: str, func: Callable[..., Any], *args: Any) -> Any:
    """Call user strategy code; its exceptions become one StrategyError line."""
    try:
        return func(*args)
    except CryptobotError:
        raise
    except Exception as exc:  # noqa: BLE001 - user code may raise anything
        raise StrategyError(f"strategy {name}.{call} failed: {type(exc).__name__}: {exc}") from exc
