"""Append-only records at request rate (consent proof): one INSERT each, no fsync per commit.

Why: the consent POST is the site's most frequent write. Committed durably, each one waited for
an fsync of the WAL (about 0.8 ms on this disk; then inside the database's one write lock), and the
route reached a third of a trivial route's throughput. Here a record goes in on the quick engine
(db.py: no sync after the commit), so its commit survives the app crashing at
once and a power cut once the WAL is synced. `WalSync` makes that happen within `SYNC_DELAY`
seconds: a background thread checkpoints the WAL, which syncs it before copying, and fsyncs the
WAL file itself when an open reader (such as `db backup`) kept the checkpoint from copying it all.
Leads, messages and the outbox never take this path: their commits sync the WAL before the caller
goes on (db.py, leadform/wal_file.py).

The INSERT is compiled by SQLAlchemy from the table once (leadform/direct_sql.py) and run as its own
statement on the pool's DBAPI connection (write_lock.LockingConnection.execute_alone): one call into SQLite
instead of BEGIN, INSERT and COMMIT, each of which let go of the GIL and had to win it back.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, Table, insert

from leadform import direct_sql, wal_file

log = logging.getLogger("leadform.db")

SYNC_DELAY = 1.0  # seconds: the most a power cut can take from the records of a running app
# Above this the sync makes the WAL start over, pausing writers briefly; the file is then cut back to it.
WAL_LIMIT = 64 * 2**20  # bytes
RESTART_FRAMES = WAL_LIMIT // 4096  # SQLite's default page size
RESTART_WAIT = 0.1  # seconds the sync waits for the write lock before it leaves the restart for later
IDLE_CHECK = 30.0  # seconds: how often an idle sync thread looks whether its app still exists


class WalSync:
    """Syncs the quick engine's WAL to disk within SYNC_DELAY of a commit; one thread per process."""

    def __init__(self, engine: Engine | None, wal: str = "", delay: float = SYNC_DELAY,
                 restart_frames: int = RESTART_FRAMES) -> None:
        self.engine = engine  # None: every commit is already durable, nothing to do
        self.wal = wal  # the WAL file of engine's database
        self.delay = delay
        self.restart_frames = restart_frames
        self.syncs = 0
        self._due = threading.Event()
        self._guard = threading.Lock()
        self._pid: int | None = None

    def soon(self) -> None:
        """Sync within `delay` seconds (the thread starts on first use, and again after a fork)."""
        if self.engine is None:
            return
        if self._pid != os.getpid():
            with self._guard:
                if self._pid != os.getpid():
                    # The thread holds the syncer weakly: once the app is gone, it ends (tests make many apps).
                    threading.Thread(target=_sync_loop, args=(weakref.ref(self), self._due, self.delay),
                                     name="leadform-wal-sync", daemon=True).start()
                    self._pid = os.getpid()
        self._due.set()

    def sync_now(self) -> None:
        """Checkpoint the WAL. With synchronous=NORMAL SQLite syncs the WAL before it copies a page,
        so a checkpoint that copied every frame leaves all commits on disk.

        The checkpoint runs beside the writers (PASSIVE: nobody waits). Only a checkpoint that no
        commit overtook lets the next writer start the WAL over from its beginning, and under a steady
        stream of commits none is: the WAL grew by every record (200 MB in 10 s of bench load). So
        once the WAL holds more than `restart_frames`, all of them copied, a second checkpoint runs
        under the write lock: it copies only the frames written during the first, and writers wait for
        it (5 to 15 ms in the endpoint bench). When the lock is not free within RESTART_WAIT (a long
        transaction elsewhere), the restart waits for the next round; the sync itself never waits.
        An open reader (`db backup` copying the file) can stop a checkpoint from copying, and from
        syncing: then the WAL file itself is fsynced. SQLite locks the database and -shm files, never
        the WAL, so opening and closing it here cannot drop a lock SQLite holds."""
        try:
            pooled = self.engine.raw_connection()
            try:
                connection = pooled.dbapi_connection
                busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if not busy and copied == frames and frames > self.restart_frames:
                    again = connection.execute_alone("PRAGMA wal_checkpoint(PASSIVE)", wait=RESTART_WAIT)
                    if again is not None:
                        busy, frames, copied = again
            finally:
                pooled.close()
            if busy or copied < frames:
                wal_file.sync(self.wal, data_only=False)
            self.syncs += 1
        except Exception as exc:  # noqa: BLE001 - the next commit asks again; the app must go on
            log.warning("WAL sync failed error=%s", type(exc).__name__)


def _sync_loop(syncer: weakref.ref[WalSync], due: threading.Event, delay: float) -> None:
    while True:
        if not due.wait(IDLE_CHECK):
            if syncer() is None:
                return
            continue
        time.sleep(delay)
        due.clear()  # a commit from now on asks for the next round
        current = syncer()
        if current is None:
            return
        current.sync_now()
        del current


class AppendLog:
    """Inserts rows into one append-only table on the quick engine, each as its own transaction."""

    def __init__(self, table: Table) -> None:
        self.statement = insert(table)
        self.table = table

    def append(self, engine: Engine, sync: WalSync, row: Mapping[str, Any]) -> None:
        """Store `row` (raises SQLAlchemy's DBAPIError when the database refuses it). The row names every
        column that has a default: this path skips SQLAlchemy's (leadform/direct_sql.py)."""
        with direct_sql.pooled_connection(engine) as pooled:
            execute_alone = getattr(pooled.dbapi_connection, "execute_alone", None)
            if execute_alone is not None:
                execute_alone(*direct_sql.bind(self.statement, engine.dialect, row))
        if execute_alone is None:  # not a SQLite file: the plain Core way
            with engine.begin() as conn:
                conn.execute(self.statement, dict(row))
            return
        sync.soon()
