"""Dask: a LocalCluster of worker processes on this machine, or a running scheduler by address.

The market data goes to every worker once (`scatter(..., broadcast=True)`); each combination is
one task that takes it by reference and hands back plain data (job.py). Results come back as
they finish; the caller stores them in the order they arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptobot.config import Settings
from cryptobot.errors import ConfigError
from cryptobot.sweep.job import MarketPack, Span, run_combination

CONNECT_TIMEOUT_S = 10


@contextmanager
def dask_client(workers: int, scheduler: str | None) -> Iterator[Any]:
    """A `distributed.Client`: on a new LocalCluster of `workers` processes (one thread each:
    a backtest holds the GIL), or on the scheduler at `scheduler` (tcp://HOST:PORT)."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                              f"({_first_line(exc)})") from None
        with client:
            yield client
        return
    check_workers(workers)
    # The scheduler's HTTP server (dashboard, health) always starts (None means :8787, taken
    # by a second sweep): on a free port of loopback only.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                           host="127.0.0.1")
    with cluster, Client(cluster) as client:
        yield client


def check_workers(workers: int) -> None:
    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected at least 1")


def run_on_cluster(client: Any, pack: MarketPack, tasks: list[tuple[Settings, Span]],
                   detail: bool) -> Iterator[tuple[int, dict]]:
    """(index of the task, its outcome) as each finishes. A task whose worker died is an
    outcome with its error; the generator's close cancels what has not run yet."""
    from distributed import as_completed

    shared = client.scatter(pack, broadcast=True, hash=False)
    futures = [client.submit(run_combination, shared, settings, span, detail, pure=False)
               for settings, span in tasks]
    index = {future.key: i for i, future in enumerate(futures)}
    try:
        for future in as_completed(futures):
            if future.status == "finished":
                outcome = future.result()
            else:
                outcome = {"error": f"the task failed on its worker: "
                                    f"{_first_line(future.exception())}"}
            yield index[future.key], outcome
            future.release()
    finally:
        client.cancel([f for f in futures if not f.done()])


def _first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__
