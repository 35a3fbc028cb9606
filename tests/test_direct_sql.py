"""The request paths' transactions on the DBAPI connection (leadform/direct_sql.py) store what Core
stores, commit all or nothing, and fail the way Core fails."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from leadform import db, direct_sql, lead_store, mails, outbox
from leadform.models import Download, Lead, utcnow

MAIL = mails.Mail("contact_confirmation", "an@example.be", "Ontvangen", {"message": {"name": "An"}},
                  headers={"List-Unsubscribe": "<mailto:coach@example.be>"})


def raw_rows(app, sql: str) -> list[tuple]:
    """Rows as SQLite holds them, without SQLAlchemy's conversions in between."""
    with sqlite3.connect(app.config["DATABASE_URL"].removeprefix("sqlite:///")) as conn:
        return conn.execute(sql).fetchall()


def test_rows_written_directly_are_stored_exactly_as_core_stores_them(app) -> None:
    when = dt.datetime(2026, 11, 27, 9, 0, 0)  # no microseconds: SQLAlchemy still writes six digits
    values = {"checklist": "teams", "name": "An", "newsletter_requested": True, "created_at": when,
              "updated_at": when, "request_count": 1}
    with app.app_context():
        with db.engine().begin() as conn:
            conn.execute(insert(Lead.__table__), {**values, "email": "core@example.be"})
        with direct_sql.transaction(db.engine()) as tx:
            lead_id = tx.execute(lead_store.INSERT_LEAD, {**values, "email": "direct@example.be"}).scalar()
            outbox.queue(tx, MAIL, lead_id=lead_id)
        with db.transaction() as s:
            outbox.queue(s, MAIL, lead_id=lead_id)
    core, direct = raw_rows(app, "SELECT created_at, updated_at, newsletter_requested, email FROM leads ORDER BY id")
    assert core[:3] == direct[:3] == ("2026-11-27 09:00:00.000000", "2026-11-27 09:00:00.000000", 1)
    by_direct, by_session = raw_rows(app, "SELECT headers, context, body_html, status, attempts, lead_id "
                                          "FROM outbox ORDER BY id")
    assert by_direct == by_session == ('{"List-Unsubscribe": "<mailto:coach@example.be>"}',
                                       '{"message": {"name": "An"}}', None, "queued", 0, lead_id)


def test_a_transaction_that_fails_halfway_leaves_nothing_and_frees_the_write_lock(app) -> None:
    with app.app_context():
        engine = db.engine()
        with pytest.raises(RuntimeError), direct_sql.transaction(engine) as tx:
            lead_store.save_lead(tx, "teams", "half@example.be", "Half", newsletter=False)
            raise RuntimeError("the view broke after the first INSERT")
        # Another thread can write at once: the lock went with the rollback.
        done = threading.Event()

        def write() -> None:
            with direct_sql.transaction(engine) as tx:
                lead_store.save_lead(tx, "teams", "next@example.be", "Next", newsletter=False)
            done.set()

        threading.Thread(target=write, daemon=True).start()
        assert done.wait(5), "the failed transaction kept the write lock"
        with db.transaction() as s:
            assert s.scalars(select(Lead.email)).all() == ["next@example.be"]


def test_a_database_error_is_sqlalchemys_and_rolls_back_the_whole_request(app) -> None:
    with app.app_context(), direct_sql.transaction(db.engine()) as tx:
        lead_id, _new, _newsletter = lead_store.save_lead(tx, "teams", "first@example.be", "First", newsletter=False)
        tx.execute(lead_store.INSERT_DOWNLOAD, {"lead_id": lead_id, "token_hash": "same", "created_at": utcnow(),
                                                "expires_at": utcnow(), "use_count": 0})
    with app.app_context():
        with pytest.raises(IntegrityError), direct_sql.transaction(db.engine()) as tx:
            lead_store.save_lead(tx, "teams", "second@example.be", "Second", newsletter=False)
            tx.execute(lead_store.INSERT_DOWNLOAD, {"lead_id": lead_id, "token_hash": "same", "created_at": utcnow(),
                                                    "expires_at": utcnow(), "use_count": 0})
        with db.transaction() as s:
            assert s.scalars(select(Lead.email)).all() == ["first@example.be"]
            assert s.scalar(select(Download.id).where(Download.token_hash == "same")) is not None


def test_a_value_left_out_or_bad_sql_fails_loudly(app) -> None:
    with app.app_context():
        with pytest.raises(KeyError, match="lead_id"), direct_sql.transaction(db.engine()) as tx:
            tx.execute(lead_store.UPDATE_LEAD, {"name": "An", "newsletter": False, "now": utcnow()})
        with pytest.raises(ValueError, match="use_count"), direct_sql.transaction(db.engine()) as tx:
            # SQLAlchemy would have filled use_count from its default; this path refuses instead.
            tx.execute(lead_store.INSERT_DOWNLOAD, {"lead_id": 1, "token_hash": "h", "created_at": utcnow(),
                                                    "expires_at": utcnow()})
        with pytest.raises(OperationalError, match="no such table"), direct_sql.transaction(db.engine()) as tx:
            tx.execute(text("SELECT id FROM no_such_table"))
