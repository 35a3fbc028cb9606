"""The Alembic migrations build exactly the schema the models describe, on a fresh SQLite file in WAL
mode and on PostgreSQL, and workers starting together run them once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from support.postgres import throwaway_database

from leadform import db
from leadform.db import MIGRATIONS, make_engine
from leadform.models import Base


@pytest.mark.sqlite_only(reason="the journal mode of a SQLite file; PostgreSQL's schema has its own test")
def test_migrations_match_the_models_and_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.upgrade(engine)  # a second start finds nothing to do


@pytest.mark.sqlite_only(reason="an existing site's SQLite file from the first release, read with SQLite's query plan")
def test_a_database_of_the_first_release_is_upgraded_with_its_mail_still_queued(tmp_path: Path) -> None:
    """0002 replaces two outbox indexes by one; a queued mail of a running site stays queued and due."""
    path = tmp_path / "old.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    db.upgrade(engine, "0001")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO outbox (created_at, kind, to_addr, subject, headers, message_id, status, attempts, "
                     "next_attempt_at) VALUES ('2026-01-01 10:00:00', 'checklist_link', 'a@example.be', "
                     "'Je checklist', '{}', '<m@example.be>', 'queued', 0, '2026-01-01 10:00:00')")
    db.upgrade(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    with sqlite3.connect(path) as conn:
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= "
                            "'2026-11-27' ORDER BY next_attempt_at LIMIT 10").fetchall()
        assert conn.execute("SELECT to_addr, status FROM outbox").fetchall() == [("a@example.be", "queued")]
    assert "ix_outbox_due" in plan[0][3] and "TEMP B-TREE" not in str(plan)


def _upgrade(url: str) -> None:
    db.upgrade(make_engine(url))


@pytest.mark.sqlite_only(reason="SQLite's migration lock file; PostgreSQL's advisory lock has its own test")
def test_workers_starting_together_on_a_fresh_file_all_come_up(tmp_path: Path) -> None:
    """gunicorn starts every worker at once and each brings the database up to date: with more than
    one revision the second worker used to run a step the first one was running (index exists)."""
    import multiprocessing

    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_upgrade, args=(url,)) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0] * 6
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    with sqlite3.connect(tmp_path / "fresh.sqlite3") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]


def _start_together(url: str, count: int) -> list[int | None]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_upgrade, args=(url,)) for _ in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    return [worker.exitcode for worker in workers]


@pytest.mark.postgresql
def test_on_postgresql_workers_starting_together_migrate_once_to_the_models_schema() -> None:
    """Four gunicorn workers on a fresh database used to race (UniqueViolation, 'Worker failed to boot')."""
    with throwaway_database() as url:
        assert _start_together(url, 6) == [0] * 6
        engine = make_engine(url)
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        engine.dispose()
        assert versions == [(ScriptDirectory(str(MIGRATIONS)).get_current_head(),)]
