"""Bring the database to the latest Alembic revision; create SQLite files in WAL mode.

Runs at app start (cheap when already current) so `make run` and a fresh
deployment need no separate step; `flask --app leadform db upgrade` does the same.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine, make_url

from leadform.db import sqlite_file

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def ensure_wal(url: str) -> None:
    """WAL is a property of the file: set it when the file is made, and again on a file restored from
    `db backup` (a self-contained file with a rollback journal). This runs before the app's engines
    connect; a file another process holds open keeps its mode (SQLite refuses the switch then)."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError:
        pass  # locked by another process: the engines still work, with SQLite syncing inside each commit
    finally:
        conn.close()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _one_at_a_time(engine):
        if engine.url.get_backend_name() == "sqlite":
            ensure_wal(engine.url.render_as_string(hide_password=False))
        config = alembic_config(engine)
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()


@contextmanager
def _one_at_a_time(engine: Engine) -> Iterator[None]:
    """gunicorn's workers all start the app, so all upgrade at once. Alembic commits between the steps
    of an upgrade on SQLite (no transactional DDL), so a second worker could start the next step
    that the first is about to run. A lock file beside the database makes them take turns."""
    database = sqlite_file(engine.url.render_as_string(hide_password=False))
    if database is None:
        yield
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    with open(database + "-migratelock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision from the models (developers only)."""
    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
