"""A grid file: `[grid]` of dotted config paths -> lists of values, optional `samples` and
`seed`; each combination checked against the real Settings before anything runs.

    [grid]
    "strategy.params.spike_body_atr" = [1.5, 2.0]
    "exits.time_stop_hours" = [12.0, 24.0]
    samples = 3   # optional: random draws (without repeats) instead of the whole product
    seed = 7      # the draws' seed (default 0): same grid and seed, same combinations
"""

from __future__ import annotations

import itertools
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cryptobot.config import Settings, StrategySettings
from cryptobot.errors import ConfigError
from cryptobot.strategy.loading import strategy_class, strategy_params

# Keys that decide which data is loaded or where results go: one sweep runs on one data set.
NOT_SWEPT = ("market.", "feed.warmup_days", "store.", "logging.")
TOP_LEVEL_KEYS = ("grid", "samples", "seed")

Params = dict[str, Any]  # one combination: dotted key -> value


@dataclass(frozen=True)
class Grid:
    values: dict[str, list[Any]]  # dotted key -> its values, in the file's order
    samples: int | None
    seed: int

    def combinations(self) -> list[Params]:
        """The whole product in the file's order, or `samples` of it drawn with `seed`
        (kept in product order; all of them when there are fewer)."""
        keys = list(self.values)
        product = [dict(zip(keys, combo, strict=True))
                   for combo in itertools.product(*self.values.values())]
        if self.samples is None or self.samples >= len(product):
            return product
        chosen = sorted(random.Random(self.seed).sample(range(len(product)), self.samples))
        return [product[i] for i in chosen]

    def as_json(self) -> dict[str, Any]:
        return {"grid": self.values, "samples": self.samples, "seed": self.seed}


def read_grid(path: Path) -> Grid:
    """The grid file, its shape checked (the keys are checked by `settings_for_grid`)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: grid file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the grid file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = [key for key in raw if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown key (a grid file holds [grid], "
                          "samples and seed)")
    table = raw.get("grid")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f'{path}: no [grid] table (e.g. "exits.time_stop_hours" = [12.0, 24.0])')
    values: dict[str, list[Any]] = {}
    for key, listed in table.items():
        if isinstance(listed, dict):  # [grid.exits] or an unquoted dotted key
            raise ConfigError(f'{path}: grid.{key}: quote a dotted key ("{key}.x" = [...])')
        if not isinstance(listed, list) or not listed:
            raise ConfigError(f"{path}: grid.{key}: expected a non-empty list of values")
        values[key] = listed
    samples, seed = raw.get("samples"), raw.get("seed", 0)
    if samples is not None and (type(samples) is not int or samples < 1):
        raise ConfigError(f"{path}: samples: expected a whole number >= 1, got {samples!r}")
    if type(seed) is not int:
        raise ConfigError(f"{path}: seed: expected a whole number, got {seed!r}")
    return Grid(values, samples, seed)


def settings_for_grid(base: Settings, grid: Grid, source: str) -> list[Settings]:
    """Each combination's settings, every one validated as a config file would be: the first
    key that is no config path, or value the settings refuse, is one ConfigError."""
    for key in grid.values:
        _check_path(base, key, source)
    return [settings_with(base, params, source) for params in grid.combinations()]


def settings_with(base: Settings, params: Params, source: str) -> Settings:
    """`base` with the dotted keys of `params` set, validated (strategy parameters against the
    strategy's own declaration)."""
    raw = base.model_dump()
    for key, value in params.items():
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[leaf] = value
    described = ", ".join(f"{k}={v!r}" for k, v in params.items())
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{source}: {key}: {first['msg'].removeprefix('Value error, ')} "
                          f"(combination {described})") from None
    strategy_params(strategy_class(settings.strategy.path), settings.strategy.params,
                    f"{source} (combination {described})")
    settings._source = base.source
    return settings


def _check_path(base: Settings, key: str, source: str) -> None:
    """`key` names one setting: a field of a section, or a declared strategy parameter."""
    refused = next((p for p in NOT_SWEPT if key == p.rstrip(".") or key.startswith(p)), None)
    if refused:
        raise ConfigError(f"{source}: grid.{key}: {refused.rstrip('.')} decides the data or the "
                          "store of the run and is not swept (run one sweep for each value)")
    parts = key.split(".")
    if parts[:2] == ["strategy", "params"] and len(parts) == 3:
        cls = strategy_class(base.strategy.path)
        if parts[2] not in cls.Params.model_fields:
            raise ConfigError(f"{source}: grid.{key}: not a parameter of strategy "
                              f"{cls.__name__} (it has {', '.join(cls.Params.model_fields)})")
        return
    model: type[BaseModel] | None = Settings
    for depth, part in enumerate(parts):
        fields = model.model_fields if model is not None else {}
        if part not in fields or (model is StrategySettings and part == "params"):
            where = ".".join(parts[:depth]) or "the config"
            raise ConfigError(f"{source}: grid.{key}: not a config path ({where} has no "
                              f"{part!r})")
        annotation = fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation,
                                                                          BaseModel) else None
        if model is None and depth < len(parts) - 1:
            raise ConfigError(f"{source}: grid.{key}: not a config path "
                              f"({'.'.join(parts[:depth + 1])} is a value, not a section)")
    if model is not None:
        raise ConfigError(f"{source}: grid.{key}: a whole section; name one of its keys")
