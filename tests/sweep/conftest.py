"""Sweep fixtures: grid and config files written into the test's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, REPO_ROOT

CRASH = DATA_DIR / "btc_2024-08_crash"
DEFAULT_CONFIG = REPO_ROOT / "config" / "default.toml"


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def write_grid(folder: Path, grid: dict[str, list], **top) -> Path:
    """A grid file of `grid` (dotted key -> values) and top-level keys (samples, seed)."""
    lines = [f"{key} = {toml_value(value)}" for key, value in top.items()]
    lines.append("[grid]")
    lines += [f'"{key}" = [{", ".join(toml_value(v) for v in values)}]'
              for key, values in grid.items()]
    path = folder / "grid.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_config(folder: Path, params: dict, name: str = "combination.toml",
                 extends: Path = DEFAULT_CONFIG) -> Path:
    """A profile extending `extends` with the dotted keys of `params` set: what a plain
    backtest of one combination reads."""
    sections: dict[str, dict] = {}
    for key, value in params.items():
        section, _, leaf = key.rpartition(".")
        sections.setdefault(section, {})[leaf] = value
    lines = [f'extends = "{extends}"']
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{leaf} = {toml_value(value)}" for leaf, value in values.items()]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def db_file(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'sweeps.sqlite'}"
