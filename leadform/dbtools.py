"""Database commands: schema upgrades and consistent online backups."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from leadform import db, migrate

db_cli = AppGroup("db", help="Database schema and backups.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations (the app also does this when it starts)."""
    migrate.upgrade(db.engine())
    click.echo("database is up to date")
