"""Sweeps in the store: the client writes a sweep and each combination's row as it arrives
(a commit each: Ctrl-C keeps what finished); the review reads them back.

    SweepWriter(url, info, clock) -> .sweep_id, .add(result), .finish(status)
    list_sweeps(url) -> [SweepListing];  read_sweep(url, sweep_id) -> (SweepInfo, [SweepResult])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cryptobot.clock import Clock
from cryptobot.errors import StoreError
from cryptobot.store.database import masked_url, open_for_reading, open_for_writing
from cryptobot.store.tables import SweepResultRow, SweepRow


@dataclass(frozen=True)
class SweepInfo:
    grid: dict[str, Any]  # Grid.as_json(): {"grid": {key: [values]}, "samples", "seed"}
    seed: int
    scheduler: str
    config_path: str
    data_source: str
    symbols: tuple[str, ...]
    start_ms: int | None
    end_ms: int | None
    walk_forward: str | None = None
    metric: str | None = None
    sweep_id: int | None = None
    created_ms: int | None = None
    finished_ms: int | None = None
    status: str = "running"


@dataclass(frozen=True)
class SweepResult:
    combination: int
    params: dict[str, Any]
    summary: dict[str, Any] | None
    error: str | None
    elapsed_s: float
    detail: dict[str, Any] | None = None
    window: int | None = None
    phase: str | None = None  # walk-forward: "train" or "test"
    start_ms: int | None = None
    end_ms: int | None = None


@dataclass(frozen=True)
class SweepListing:
    info: SweepInfo
    combinations: int  # rows stored (walk-forward: every window's and phase's)
    errors: int


class SweepWriter:
    """The one writer of a sweep: its row at start, then one row per result, each committed."""

    def __init__(self, url: str, info: SweepInfo, clock: Clock) -> None:
        self.url, self.clock = url, clock
        self.engine = open_for_writing(url)
        self.seq = 0
        row = SweepRow(grid_json=info.grid, seed=info.seed, scheduler=info.scheduler,
                       config_path=info.config_path, data_source=info.data_source[:1000],
                       symbols_json=list(info.symbols), start_ms=info.start_ms,
                       end_ms=info.end_ms, walk_forward=info.walk_forward, metric=info.metric,
                       created_ms=clock.now_ms(), finished_ms=None, status="running")
        with self._session() as session:
            session.add(row)
            session.flush()
            self.sweep_id: int = row.id

    def add(self, result: SweepResult) -> None:
        self.seq += 1
        row = SweepResultRow(
            sweep_id=self.sweep_id, seq=self.seq, combination=result.combination,
            window=result.window, phase=result.phase, start_ms=result.start_ms,
            end_ms=result.end_ms, params_json=result.params, summary_json=result.summary,
            error=None if result.error is None else result.error[:2000],
            detail_json=result.detail, elapsed_s=float(result.elapsed_s))
        with self._session() as session:
            session.add(row)

    def finish(self, status: str) -> None:
        with self._session() as session:
            row = session.get(SweepRow, self.sweep_id)
            row.status, row.finished_ms = status, self.clock.now_ms()

    def close(self) -> None:
        self.engine.dispose()

    def _session(self):
        return _committing(self.engine, self.url)


class _committing:
    """A session committed on leaving the block; a database error is a StoreError."""

    def __init__(self, engine, url: str) -> None:
        self.session, self.url = Session(engine, expire_on_commit=False), url

    def __enter__(self) -> Session:
        return self.session

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if kind is None:
                self.session.commit()
            else:
                self.session.rollback()
        except SQLAlchemyError as error:
            raise StoreError(f"{masked_url(self.url)}: cannot store the sweep: "
                             f"{str(error).splitlines()[0]}") from None
        finally:
            self.session.close()
        if isinstance(exc, SQLAlchemyError):
            raise StoreError(f"{masked_url(self.url)}: cannot store the sweep: "
                             f"{str(exc).splitlines()[0]}") from None


def list_sweeps(url: str) -> list[SweepListing]:
    engine = open_for_reading(url)
    try:
        with Session(engine) as session:
            counts = dict(session.execute(
                select(SweepResultRow.sweep_id, func.count()).group_by(SweepResultRow.sweep_id)
            ).all())
            errors = dict(session.execute(
                select(SweepResultRow.sweep_id, func.count())
                .where(SweepResultRow.error.is_not(None)).group_by(SweepResultRow.sweep_id)
            ).all())
            rows = session.scalars(select(SweepRow).order_by(SweepRow.id)).all()
            return [SweepListing(_info(row), counts.get(row.id, 0), errors.get(row.id, 0))
                    for row in rows]
    except SQLAlchemyError as exc:
        raise StoreError(f"{masked_url(url)}: cannot read sweeps: "
                         f"{str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def read_sweep(url: str, sweep_id: int) -> tuple[SweepInfo, list[SweepResult]]:
    engine = open_for_reading(url)
    try:
        with Session(engine) as session:
            row = session.get(SweepRow, sweep_id)
            if row is None:
                raise StoreError(f"{masked_url(url)}: no sweep {sweep_id} (`cryptobot sweeps` "
                                 "lists them)")
            results = session.scalars(select(SweepResultRow).where(
                SweepResultRow.sweep_id == sweep_id).order_by(SweepResultRow.seq)).all()
            # In the grid's order (they were stored as they arrived): window by window,
            # training before test.
            ordered = sorted(results, key=lambda r: (r.window if r.window is not None else -1,
                                                     r.phase == "test", r.combination))
            return _info(row), [_result(r) for r in ordered]
    except SQLAlchemyError as exc:
        raise StoreError(f"{masked_url(url)}: cannot read sweep {sweep_id}: "
                         f"{str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def _info(row: SweepRow) -> SweepInfo:
    return SweepInfo(row.grid_json, row.seed, row.scheduler, row.config_path, row.data_source,
                     tuple(row.symbols_json), row.start_ms, row.end_ms, row.walk_forward,
                     row.metric, row.id, row.created_ms, row.finished_ms, row.status)


def _result(row: SweepResultRow) -> SweepResult:
    return SweepResult(row.combination, row.params_json, row.summary_json, row.error,
                       row.elapsed_s, row.detail_json, row.window, row.phase, row.start_ms,
                       row.end_ms)
