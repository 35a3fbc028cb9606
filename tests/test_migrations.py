"""The Alembic migrations build exactly the schema the models describe, on a fresh SQLite file in WAL mode."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from leadform import migrate
from leadform.db import make_engine
from leadform.models import Base


def test_migrations_match_the_models_and_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    migrate.upgrade(engine)  # a second start finds nothing to do
