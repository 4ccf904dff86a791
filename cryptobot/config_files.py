"""Reading a settings profile: TOML, `extends` chains, and what a child replaces of its parent.

Plain dictionaries only: `cryptobot.config` validates the result.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from cryptobot.errors import ConfigError


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_profile(path: Path, default_strategy_path: str,
                 seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A profile's TOML with what it `extends` merged in (a profile naming its strategy or
    its symbols replaces the parent's)."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: 'extends' loops back to itself")
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (TOML is UTF-8 text)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: 'extends' must be a file name")
    base = read_profile(path.parent / parent, default_strategy_path, (*seen, path))
    base = _without_other_strategys_params(base, raw, default_strategy_path)
    return _merge(_without_parents_symbols(base, raw), raw)


def _without_parents_symbols(base: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """A profile naming its symbol(s) replaces the parent's, whichever key either one uses."""
    mine, theirs = raw.get("market"), base.get("market")
    if not (isinstance(mine, dict) and isinstance(theirs, dict)
            and ("symbol" in mine or "symbols" in mine)):
        return base
    return {**base, "market": {k: v for k, v in theirs.items() if k not in ("symbol", "symbols")}}


def _without_other_strategys_params(base: dict[str, Any], raw: dict[str, Any],
                                    default_strategy_path: str) -> dict[str, Any]:
    """Parameters belong to their strategy: a profile naming another strategy than the one it
    extends does not inherit the parent's `[strategy.params]`."""
    mine, theirs = raw.get("strategy"), base.get("strategy")
    if not (isinstance(mine, dict) and isinstance(theirs, dict) and "path" in mine):
        return base
    if mine["path"] == theirs.get("path", default_strategy_path):
        return base
    return {**base, "strategy": {k: v for k, v in theirs.items() if k != "params"}}
