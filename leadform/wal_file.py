"""Putting a SQLite database's WAL file on disk ourselves, outside SQLite's write lock.

Why: with `synchronous=FULL` SQLite fsyncs the WAL inside every commit, while it (and
leadform.write_lock) still holds the database's one write lock, so every other writer of every
worker waited for this commit's disk flush as well. The engines commit with `synchronous=NORMAL`
instead, and the durable engine's connection (db.py, write_lock.connection_class) calls `sync`
after the commit has let go of the lock and before the visitor gets an answer: the lead is on disk
just as before, and the next writer works while this one waits for the disk. Two workers flushing
at once also share the file system's journal commit.

One fdatasync of the WAL covers every commit written to it so far, whichever connection wrote it.
A commit whose frames a checkpoint already copied into the database file and a later writer then
overwrote is on disk as well: SQLite syncs the database file before it lets the WAL start over.
SQLite syncs the folder once after creating a WAL (so that the file itself survives a power cut)
at its first sync of the file, which with NORMAL is the first checkpoint; `sync` does that itself
the first time it meets a new WAL file.
"""

from __future__ import annotations

import os
import threading

_synced_folders: set[tuple[int, int]] = set()  # (device, inode) of WAL files whose folder entry is on disk
_guard = threading.Lock()


def sync(path: str, *, data_only: bool = True) -> bool:
    """fdatasync (or fsync) the WAL file at `path`, and its folder the first time this process meets
    that file. False when there is no WAL: the last connection closed, checkpointed and removed it,
    and that checkpoint synced the database file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        (os.fdatasync if data_only else os.fsync)(fd)
        stat = os.fstat(fd)
    finally:
        os.close(fd)
    key = (stat.st_dev, stat.st_ino)
    if key not in _synced_folders:
        _sync_folder(os.path.dirname(os.path.abspath(path)))
        with _guard:
            _synced_folders.add(key)
    return True


def _sync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
