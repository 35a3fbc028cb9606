"""One engine, sessions the documented way, migrations that run once, and backups.

SQLite is the embedded default (a file in instance/): WAL, `synchronous=FULL` so a commit is on
disk before the visitor is thanked, a busy timeout, and BEGIN IMMEDIATE so concurrent writers queue
instead of failing halfway (SQLAlchemy's documented pysqlite recipe). PostgreSQL is production's
(LEADFORM_DATABASE_URL=postgresql+psycopg://…), with the driver's defaults.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 15000
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# SQLite errors after which a connection stays unusable (opened while the file was read-only, or it hit a
# full disk): the pool drops it and opens a fresh one, so the app recovers once the fault is gone.
UNUSABLE = ("readonly", "read-only", "disk i/o error", "database or disk is full", "unable to open")


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for another database or one in memory."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    database = sqlite_file(url)
    writers = WriterQueue(Path(f"{database}-writer")) if database is not None else None

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # pysqlite's own BEGIN off: _begin emits ours
        # secure_delete: a deleted row's bytes are overwritten, not left in free pages (GDPR erasure).
        for pragma in (f"busy_timeout = {BUSY_TIMEOUT_MS}", "foreign_keys = ON", "synchronous = FULL",
                       "secure_delete = ON"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        entry = conn.connection.record_info
        if writers is not None and entry is not None and not entry.get("writing"):
            writers.acquire()
            entry["writing"] = True
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection, record) -> None:
        if record is not None and record.record_info.pop("writing", False):
            writers.release()

    @event.listens_for(engine, "handle_error")
    def _drop_broken(context) -> None:
        if any(word in str(context.original_exception).lower() for word in UNUSABLE):
            context.is_disconnect = True

    return engine


class WriterQueue:
    """Writers to one SQLite file take turns, across threads and processes, before their BEGIN IMMEDIATE:
    a thread lock queues this process's writers, an flock on `path` (an empty file beside the database)
    queues the processes, and the kernel wakes the next one the moment a write ends. Without it SQLite's
    busy handler makes a waiting writer sleep 1, 2, 5, … up to 100 ms between tries while others keep
    taking the lock: at 100 forms a second a visitor waited up to a second for a lock held 3 ms at a
    time (bench/README.md, "SQLite's writers in turn"). A writer that waits for another thread of its
    process longer than the busy timeout gets SQLite's own "database is locked" (the visitor: try again
    later); one waiting for another process waits for that transaction, which is short, and a process
    that dies lets go with it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.thread_lock = threading.Lock()
        self.fd: int | None = None
        self.pid: int | None = None

    def acquire(self) -> None:
        if not self.thread_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise self.locked()
        try:
            if self.pid != os.getpid():  # a forked child opens its own: an inherited one shares the lock
                try:
                    self.fd, self.pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
                except OSError as exc:  # a read-only or full folder: the same try-again as SQLite's own error
                    raise OperationalError("BEGIN IMMEDIATE", None,
                                           sqlite3.OperationalError(f"unable to open {self.path.name}")) from exc
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self.thread_lock.release()
            raise

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.thread_lock.release()

    @staticmethod
    def locked() -> OperationalError:
        return OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked"))


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["leadform.engine"] = engine
    app.extensions["leadform.sessions"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["leadform.engine"]


def session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["leadform.sessions"]()
    return g.db_session


@contextmanager
def transaction() -> Iterator[Session]:
    """A fresh session in one transaction, committed on success (CLI and the outbox thread)."""
    with current_app.extensions["leadform.sessions"]() as s, s.begin():
        yield s


def _close_session(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()


def dialect_insert(dialect: str, table: type | Table) -> Any:
    """An INSERT that can say ON CONFLICT (`dialect` is an engine's dialect name): SQLite and PostgreSQL
    both have it, with the same SQLAlchemy API."""
    return (sqlite if dialect == "sqlite" else postgresql).insert(table)


# -- migrations ------------------------------------------------------------------------------------------

def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`, one process at a time: gunicorn's workers all start the app
    at once. PostgreSQL: an advisory lock held by the migration's own transaction (its DDL is
    transactional, so the next worker finds the schema done). SQLite: a lock file beside the
    database, since Alembic commits between steps there."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    database = sqlite_file(engine.url)
    with _file_lock(database):
        if database is not None:
            _ensure_wal(database)
        _upgrade(engine, config, revision)


def _upgrade(engine: Engine, config: Config, revision: str) -> None:
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


ADVISORY_KEY = zlib.crc32(b"leadform migrations")


def _ensure_wal(database: Path) -> None:
    """WAL is a property of the file: set when it is made, and again on a file restored from a backup
    (a self-contained file with a rollback journal). Another process holding the file open may refuse
    the switch; the app then works on, with the journal it has. The file holds personal data: it is
    readable by its owner only, and SQLite gives its -wal and -shm files the same mode."""
    os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
    database.chmod(0o600)
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        pass
    finally:
        conn.close()


@contextmanager
def _file_lock(database: Path | None) -> Iterator[None]:
    if database is None:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(f"{database}-migratelock", os.O_RDWR | os.O_CREAT, 0o600), "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def forget_deleted(engine: Engine, attempts: int = 20) -> bool:
    """After an erasure, make the SQLite files forget the deleted rows: secure_delete overwrote them in
    the database's pages, and a checkpoint copies those pages from the WAL, which still holds the old
    ones, and truncates it. A reader elsewhere can hold the checkpoint back for a moment, so it is
    tried a few times. False when the WAL could not be emptied (said by the caller). PostgreSQL keeps
    dead rows until its autovacuum, as the README says."""
    if engine.dialect.name != "sqlite":
        return True
    for _ in range(attempts):
        pooled = engine.raw_connection()  # outside any transaction: a checkpoint cannot run inside one
        try:
            busy, _frames, _copied = pooled.dbapi_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            pooled.close()
        if not busy:
            return True
        time.sleep(0.05)
    return False


# -- backups ---------------------------------------------------------------------------------------------

def backup(engine: Engine, target: Path) -> dict[str, int] | None:
    """A consistent copy of the live database at `target`, made while the app runs, readable by its
    owner only and renamed into place only when complete. SQLite: the online backup API, checked and
    made a single self-contained file; returns the rows per table. PostgreSQL: `pg_dump` (custom
    format, restore with `pg_restore --clean -d URL FILE`); returns None."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    url = engine.url
    counts = None
    if url.get_backend_name() == "sqlite":
        database = sqlite_file(url)
        if database is None:
            raise ValueError("an in-memory database has nothing to back up")
        counts = _sqlite_backup(database, partial)
    elif url.get_backend_name() == "postgresql":
        libpq_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
        subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={libpq_url}"],
                       check=True, capture_output=True, text=True)
    else:
        raise ValueError(f"no backup for {url.get_backend_name()} databases")
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    partial.chmod(0o600)
    partial.replace(target)
    return counts


def _sqlite_backup(source: Path, partial: Path) -> dict[str, int]:
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)  # all pages under one read transaction: one snapshot while the app writes
        dst.execute("PRAGMA journal_mode=DELETE")
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise RuntimeError(f"the backup copy failed its integrity check: {check}")
        tables = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: dst.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608
    finally:
        dst.close()
        src.close()
