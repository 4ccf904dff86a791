"""A file cache of fetched series (one CSV per series plus a small JSON of when and whence),
so a run does not refetch what an earlier run fetched less than `max_age_hours` ago."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Protocol

import numpy as np

from cryptobot.clock import HOUR_MS, Clock
from cryptobot.errors import MacroDataError
from cryptobot.macro.observations import Observations


class SeriesSource(Protocol):
    method: str

    def fetch(self, series_id: str) -> Observations: ...


class CachedSource:
    def __init__(self, source: SeriesSource, cache_dir: Path, max_age_hours: float,
                 clock: Clock) -> None:
        self.method = source.method
        self._source = source
        self._dir = cache_dir
        self._max_age_ms = int(max_age_hours * HOUR_MS)
        self._clock = clock

    def fetch(self, series_id: str) -> Observations:
        cached = self._read(series_id)
        if cached is not None:
            return cached
        obs = self._source.fetch(series_id)
        self._write(obs)
        return obs

    def _paths(self, series_id: str) -> tuple[Path, Path]:
        return self._dir / f"{series_id}.csv", self._dir / f"{series_id}.json"

    def _read(self, series_id: str) -> Observations | None:
        data_path, meta_path = self._paths(series_id)
        try:
            meta = json.loads(meta_path.read_text())
            if self._clock.now_ms() - int(meta["fetched_ms"]) > self._max_age_ms:
                return None
            if meta.get("method") != self.method:
                return None
            with data_path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
        except (FileNotFoundError, KeyError, ValueError, json.JSONDecodeError):
            return None
        try:
            dates = np.array([row["date"] for row in rows], dtype="datetime64[D]")
            values = np.array([float(row["value"]) for row in rows], dtype=np.float64)
            vintages = np.array([row["vintage_date"] or "NaT" for row in rows],
                                dtype="datetime64[D]")
        except (KeyError, ValueError):
            raise MacroDataError(
                f"{data_path}: corrupted cache file; delete it to refetch"
            ) from None
        has_vintages = bool(meta.get("has_vintages"))
        return Observations(series_id, dates, values, f"{meta['source']} (cached {data_path})",
                            vintages if has_vintages else None)

    def _write(self, obs: Observations) -> None:
        data_path, meta_path = self._paths(obs.series_id)
        self._dir.mkdir(parents=True, exist_ok=True)
        vintages = obs.vintage_dates
        with data_path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["date", "value", "vintage_date"])
            for i, day in enumerate(obs.dates):
                vintage = "" if vintages is None or np.isnat(vintages[i]) else str(vintages[i])
                writer.writerow([str(day), repr(float(obs.values[i])), vintage])
        meta_path.write_text(json.dumps({
            "series_id": obs.series_id, "source": obs.source, "method": self.method,
            "fetched_ms": self._clock.now_ms(), "has_vintages": vintages is not None,
        }))
