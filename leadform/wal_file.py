"""Putting a SQLite database's WAL file on disk ourselves, outside SQLite's write lock.

Why: with `synchronous=FULL` SQLite fsyncs the WAL inside every commit, while it (and
leadform.write_lock) still holds the database's one write lock, so every other writer of every
worker waited for this commit's disk flush as well. A durable connection in WAL mode commits with
`synchronous=NORMAL` instead and calls `DurableCommits` after the commit has let go of the lock and
before the caller goes on (db.py, write_lock.connection_class): the lead is on disk before the
visitor is thanked, as before, and the next writer works while this one waits for the disk.

One fdatasync of the WAL covers every commit written to it so far, whichever connection wrote it.
A commit whose frames a checkpoint already copied into the database file, before a later writer
started the WAL over, is on disk as well: SQLite syncs the WAL before a checkpoint copies it and the
database file before it lets the WAL start over, and it syncs a new WAL's header (and, the first
time, its folder) before the first frame, also with NORMAL.

What this does not give: another connection can read a commit while its sync is still running
(with FULL it could not), so a transaction that only reads may act on a row that a power cut then
takes back; any transaction that writes syncs the WAL itself, and so everything before it.
"""

from __future__ import annotations

import errno
import os
import sqlite3

# WAL files whose last sync failed in this process. Linux reports a failed write-back once, to the
# descriptors open at the time: a later fdatasync may succeed although those pages never reached the
# disk ("fsyncgate"). So after a failure, commits fail until a full checkpoint has copied the WAL into
# the database file and synced that.
_FAILED: set[str] = set()


def sync(path: str, *, data_only: bool = True, missing_ok: bool = True) -> bool:
    """fdatasync (or fsync) the WAL file at `path`. False when there is no WAL and `missing_ok`: the
    last connection closed, checkpointed (which synced the database file) and removed it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if missing_ok:
            return False
        raise
    try:
        (os.fdatasync if data_only else os.fsync)(fd)
    finally:
        os.close(fd)
    return True


class DurableCommits:
    """Called by a durable connection after each commit that changed rows: returns once they are on
    disk, raises OSError when that is not known."""

    def __init__(self, wal: str) -> None:
        self.wal = wal

    def __call__(self, connection: sqlite3.Connection) -> None:
        try:
            if self.wal in _FAILED:
                _checkpoint_all(connection)
                _FAILED.discard(self.wal)
            # Our connection is open, so SQLite cannot have removed the WAL: missing means a wrong path.
            sync(self.wal, missing_ok=False)
        except OSError:
            _FAILED.add(self.wal)
            raise


def _checkpoint_all(connection: sqlite3.Connection) -> None:
    busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
    if busy or copied < frames:
        raise OSError(errno.EIO, "an earlier WAL sync failed and the WAL could not be copied into the database yet")


def durable_commits(connection: sqlite3.Connection) -> DurableCommits | None:
    """For a connection to a database file in WAL mode, what makes its commits durable after the lock;
    None otherwise (a rollback journal, an in-memory or temporary database): SQLite must sync inside the
    commit, with synchronous=FULL. The WAL's path comes from SQLite itself, so a symlinked or relative
    database path still names the file SQLite writes."""
    if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        return None
    main = next((row[2] for row in connection.execute("PRAGMA database_list") if row[1] == "main"), "")
    return DurableCommits(main + "-wal") if main else None
