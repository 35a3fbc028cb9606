"""Database commands: schema upgrades and consistent online backups."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy.engine import Engine

from leadform import db, migrate

db_cli = AppGroup("db", help="Database schema and backups.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations (the app also does this when it starts)."""
    migrate.upgrade(db.engine())
    click.echo("database is up to date")


def sqlite_file(engine: Engine) -> Path:
    if engine.url.get_backend_name() != "sqlite" or engine.url.database in (None, "", ":memory:"):
        raise click.ClickException("`db backup` copies SQLite files; for another database use its own tool "
                                   "(e.g. pg_dump).")
    return Path(engine.url.database)


def backup(source: Path, target: Path) -> dict[str, int]:
    """Copy a live SQLite database to `target` with SQLite's online backup API.

    The copy is made in one step, so it is one consistent snapshot: in WAL mode the
    reader sees the database as of its start while the app keeps writing. The copy
    is checked, switched to a single self-contained file (no -wal), synced and only
    then renamed into place, so `target` is never a half-written backup.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)  # pages=-1: all at once, under one read transaction
        dst.execute("PRAGMA journal_mode=DELETE")
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise click.ClickException(f"the backup copy failed its integrity check: {check}")
        tables = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        counts = {t: dst.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608
    finally:
        dst.close()
        src.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    partial.chmod(0o600)  # it holds personal data
    partial.replace(target)
    return counts


@db_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(path: Path) -> None:
    """Write a consistent copy of the live database to PATH (safe while the app runs).

    Restore: stop the app, remove the database's -wal and -shm files, copy PATH over
    the database file, start the app.
    """
    counts = backup(sqlite_file(db.engine()), path)
    click.echo(f"backup written to {path} ({path.stat().st_size} bytes, integrity ok)")
    for table, count in counts.items():
        click.echo(f"  {table}: {count} rows")
