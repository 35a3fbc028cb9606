"""Bring the database to the latest Alembic revision; create SQLite files in WAL mode.

Runs at app start (cheap when already current) so `make run` and a fresh
deployment need no separate step; `flask --app leadform db upgrade` does the same.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine, make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def create_sqlite_file(url: str) -> None:
    """WAL is a property of the file: set it once, when the file is made."""
    database = make_url(url).database
    if not database or database == ":memory:" or Path(database).exists():
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA journal_mode=WAL")


def upgrade(engine: Engine, revision: str = "head") -> None:
    if engine.url.get_backend_name() == "sqlite":
        create_sqlite_file(engine.url.render_as_string(hide_password=False))
    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision from the models (developers only)."""
    config = alembic_config(engine)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
