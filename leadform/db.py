"""Engines and per-request sessions; SQLite tuned for many small concurrent writes.

SQLite gets WAL (set once, when the database is created) and every transaction
starts with BEGIN IMMEDIATE, so concurrent writers queue instead of failing halfway
with "database is locked". They queue on leadform.write_lock, which wakes the next
writer at once, rather than on SQLite's busy handler, which sleeps.

Two engines on one file, both committing with synchronous=NORMAL (no fsync inside SQLite's
commit, which holds the write lock). `engine()` then syncs the WAL itself, once the lock is free
and before the caller goes on (leadform/wal_file.py): a lead or a message is on disk before the
visitor hears "thank you", power cut or not, as with synchronous=FULL. `engine(durable=False)`
does not, for consent records only (leadform/append_log.py): such a commit survives the app
crashing but waits in the OS's cache until the WAL is synced, which append_log does within a
second. That is PostgreSQL's `synchronous_commit = off`, for one table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from leadform import append_log, wal_file
from leadform.write_lock import connection_class, for_database, leaves_connection_unusable

BUSY_TIMEOUT_MS = 15000


def sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL; None for another database, or one in memory or given as a URI."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" \
            or database.startswith("file:"):
        return None
    return database


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """An engine whose commits are synced to disk before commit() returns (durable) or left to the
    next WAL sync (SQLite only)."""
    if url.startswith("sqlite"):
        connect_args: dict = {"timeout": BUSY_TIMEOUT_MS / 1000}
        database = sqlite_file(url)
        if database:
            connect_args["factory"] = connection_class(for_database(database, BUSY_TIMEOUT_MS / 1000))
        engine = create_engine(url, connect_args=connect_args)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # let us emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            synchronous = "NORMAL"
            if durable:  # on disk before commit() returns: synced after the lock, or else by SQLite inside it
                commits = wal_file.durable_commits(dbapi_connection)
                if commits is not None and hasattr(dbapi_connection, "after_write"):
                    dbapi_connection.after_write = commits
                else:
                    synchronous = "FULL"
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            # Both engines write to one WAL; whichever starts it over cuts the file back to this size.
            cursor.execute(f"PRAGMA journal_size_limit = {append_log.WAL_LIMIT}")
            if not durable:
                # Its WAL is checkpointed by append_log.WalSync's thread, not by whichever request's
                # commit crosses 1000 pages, while holding the write lock.
                cursor.execute("PRAGMA wal_autocheckpoint = 0")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:
            dbapi_connection = conn.connection.dbapi_connection
            if hasattr(dbapi_connection, "begin_immediate"):
                dbapi_connection.begin_immediate()
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "handle_error")
        def _drop_broken(context) -> None:
            # A connection opened while the file was read-only, or that hit a full disk,
            # stays unusable: treat it as disconnected so the pool opens a fresh one.
            if leaves_connection_unusable(context.original_exception):
                context.is_disconnect = True

        return engine
    return create_engine(url, pool_pre_ping=True)


def init_app(app: Flask) -> None:
    url = app.config["DATABASE_URL"]
    engine = make_engine(url)
    app.extensions["leadform.engine"] = engine
    database = sqlite_file(url)
    # Elsewhere than a SQLite file every commit is durable: the quick engine is the same engine.
    quick = make_engine(url, durable=False) if database else engine
    app.extensions["leadform.quick_engine"] = quick
    app.extensions["leadform.wal_sync"] = append_log.WalSync(quick, database + "-wal") if database \
        else append_log.WalSync(None)
    app.extensions["leadform.sessions"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def engine(durable: bool = True) -> Engine:
    """The app's engine; durable=False only for append_log's records (see the module docstring)."""
    return current_app.extensions["leadform.engine" if durable else "leadform.quick_engine"]


def session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["leadform.sessions"]()
    return g.db_session


@contextmanager
def transaction() -> Iterator[Session]:
    """A fresh session in one transaction, committed on success (for CLI and the outbox thread)."""
    with current_app.extensions["leadform.sessions"]() as s, s.begin():
        yield s


def _close_session(_exc: BaseException | None) -> None:
    s = g.pop("db_session", None)
    if s is not None:
        s.close()
