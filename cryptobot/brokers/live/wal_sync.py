"""The live state's write-ahead log made durable against a power cut OFF the order path.

An order's intent is committed before it is sent with SQLite's synchronous=NORMAL: the WAL
frames are written (into the OS page cache) but not fsynced, so a crash or a kill -9 of the
bot's process loses nothing, and the commit costs ~0.1 ms instead of an fsync (~1 ms or more).
The fsync that a power cut needs is started by `sync_soon` as the request goes out, on a
thread of its own (os.fsync releases the interpreter lock): it runs while the order travels.
So a power cut can lose at most the intent of an order sent in the last fsync's time (a
millisecond or so); on restart that order is then unknown to the bot (freqtrade and
NautilusTrader write nothing before the send at all) and reconciliation finds it on the
exchange as an unknown order. A checkpoint (SQLite syncs the WAL before it and the database
after it, at NORMAL too) keeps what it moves durable.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("cryptobot.live.state")


class WalSync:
    """Fsyncs `database`'s -wal file on a daemon thread whenever `sync_soon` asks; requests
    that come while one runs are served by the next one (which covers them all)."""

    def __init__(self, database: Path) -> None:
        self.wal_path = Path(f"{database}-wal")
        self.syncs = 0  # fsyncs done (tests, benchmarks)
        self._wanted = threading.Condition()
        self._asked = 0  # requests so far
        self._served = 0  # requests the last finished fsync covered
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="wal-fsync", daemon=True)
        self._thread.start()

    def sync_soon(self) -> None:
        """Have everything committed so far made durable, without waiting for it."""
        with self._wanted:
            self._asked += 1
            self._wanted.notify()

    def wait(self, timeout_s: float = 5.0) -> bool:
        """Block until every request so far is served (tests, close); False on a timeout."""
        with self._wanted:
            target = self._asked
            return self._wanted.wait_for(lambda: self._served >= target, timeout_s)

    def close(self) -> None:
        """Serve what was asked, then stop the thread."""
        self.wait()
        with self._wanted:
            self._closing = True
            self._wanted.notify_all()
        self._thread.join(5.0)

    def _run(self) -> None:
        while True:
            with self._wanted:
                self._wanted.wait_for(lambda: self._asked > self._served or self._closing)
                if self._closing and self._asked <= self._served:
                    return
                covering = self._asked
            self._fsync()
            with self._wanted:
                self._served = covering
                self._wanted.notify_all()

    def _fsync(self) -> None:
        try:
            fd = os.open(self.wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return  # checkpointed and removed: the database file holds it, synced
        except OSError as exc:
            log.error("could not open %s to make it durable: %s", self.wal_path, exc)
            return
        try:
            os.fsync(fd)
            self.syncs += 1
        except OSError as exc:
            log.error("fsync of %s failed (a power cut may lose the last order intents): %s",
                      self.wal_path, exc)
        finally:
            os.close(fd)
