"""Throwaway PostgreSQL databases on the local server, for the tests that need PostgreSQL itself
(two app instances sharing one, pg_dump backups, workers migrating at once) and for a whole-suite
run on PostgreSQL (LEADFORM_TEST_DATABASE_URL). A missing server fails the test, never skips it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

# The server's maintenance database, from which test databases are created and dropped.
ADMIN_URL = os.environ.get("LEADFORM_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def throwaway_database(prefix: str = "leadform_test") -> Iterator[str]:
    """A new, empty database for the block; dropped after, connections and all."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
