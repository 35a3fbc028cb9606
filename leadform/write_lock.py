"""One SQLite writer at a time, queued by the kernel instead of SQLite's sleeping busy handler.

Why: when a second connection finds the database locked, SQLite's busy handler sleeps in growing
steps (1, 2, 5 ... 100 ms) and retries. Under a burst of form posts from several gunicorn workers
most of the time went to those sleeps: throughput fell to a twentieth of a trivial route and p99
latency reached seconds. Here every transaction first takes a thread lock (for this process's
threads) and an flock on a file beside the database (for the other processes); the kernel wakes
the next writer the moment the previous one commits.

The lock is an accelerator, never a condition for correctness: SQLite still locks the database
itself, so when the lock file cannot be opened (a read-only folder, a full disk) or a thread
already holds the lock (a nested transaction), the transaction simply goes ahead without it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable

log = logging.getLogger("leadform.db")

# SQLite errors after which a connection stays unusable (opened while the file was read-only, or it
# hit a full disk): the pool must drop it and open a fresh one (db.py, append_log.py).
RECONNECT_ON = ("readonly", "read-only", "disk i/o error", "database or disk is full", "unable to open")


def leaves_connection_unusable(exc: BaseException) -> bool:
    """Whether a SQLite error is one of RECONNECT_ON's: the connection must be dropped, not reused."""
    message = str(exc).lower()
    return any(word in message for word in RECONNECT_ON)


class WriteLock:
    """A lock shared by the threads of this process (threading.Lock) and all processes (flock)."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._threads = threading.Lock()
        self._owner: int | None = None
        self._fd: int | None = None
        self._fd_pid: int | None = None

    def acquire(self, wait: float | None = None) -> bool:
        """True when this thread now holds the lock; False to go ahead on SQLite's own locking. With
        `wait` (seconds), also False, quietly, when the lock was not free in time: for a caller that
        can do without it, such as the WAL sync (append_log), which must never wait long."""
        if self._owner == threading.get_ident():
            return False
        if not self._threads.acquire(timeout=self.timeout if wait is None else wait):
            if wait is None:
                log.warning("database write lock not acquired within %.0f s; relying on SQLite's locking",
                            self.timeout)
            return False
        try:
            if wait is None:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            elif not self._flock_within(wait):
                self._threads.release()
                return False
        except OSError as exc:
            self._threads.release()
            log.warning("database write lock file unusable path=%s error=%s", self.path, exc.strerror)
            return False
        self._owner = threading.get_ident()
        return True

    def _flock_within(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.001)

    def release(self) -> None:
        self._owner = None
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int:
        """The lock file's descriptor, opened anew in a forked child (flock is per open file)."""
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        return self._fd


_SHARED: dict[str, WriteLock] = {}
_SHARED_GUARD = threading.Lock()


def for_database(database: str, timeout: float) -> WriteLock:
    """This process's one lock for a database file. Both engines on the file (db.py: durable and quick)
    use it, so their threads exclude each other, and a thread that already holds it never waits on itself."""
    path = os.path.abspath(database) + "-writelock"
    with _SHARED_GUARD:
        return _SHARED.setdefault(path, WriteLock(path, timeout))


def connection_class(lock: WriteLock) -> type[sqlite3.Connection]:
    """A sqlite3 connection class that releases `lock` when its transaction ends, however it ends, and
    calls its `after_write` (db.py sets it: sync the WAL) once a transaction that changed rows has
    committed and let go of the lock: what that waits for, no other writer waits for."""

    class LockingConnection(sqlite3.Connection):
        holds_lock = False
        changes_before = 0
        after_write: Callable[[sqlite3.Connection], object] | None = None

        def begin_immediate(self) -> None:
            self.holds_lock = lock.acquire()
            self.changes_before = self.total_changes
            try:
                self.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._release()
                raise

        def execute_alone(self, sql: str, params: tuple = (), wait: float | None = None) -> tuple | None:
            """One statement as its own transaction (SQLite's autocommit), under the lock; its row, for a
            statement that returns at most one. One call into SQLite instead of three (BEGIN, statement,
            COMMIT): each call lets go of the GIL and must win it back from the worker's other threads,
            and under load that was most of the cost of a consent insert. With `wait`, the statement
            runs only under the lock: None, without running it, when the lock was not free in time."""
            held = lock.acquire(wait)
            if wait is not None and not held:
                return None
            self.changes_before = self.total_changes
            try:
                row = self.execute(sql, params).fetchone()
            finally:
                if held:
                    lock.release()
            self._after_write()
            return row

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._release()
            self._after_write()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._release()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._release()

        def _after_write(self) -> None:
            if self.after_write is None or self.total_changes == self.changes_before:
                return
            self.changes_before = self.total_changes
            try:
                self.after_write(self)
            except OSError as exc:  # committed, but not known to be on disk: callers must not say "stored"
                raise sqlite3.OperationalError(f"disk I/O error: {exc.strerror}") from exc

        def _release(self) -> None:
            if self.holds_lock:
                self.holds_lock = False
                lock.release()

    return LockingConnection
