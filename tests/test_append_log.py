"""Consent records skip the per-commit fsync, and still reach the disk within seconds; leads never skip it."""

from __future__ import annotations

import gc
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from leadform import append_log, db
from leadform.append_log import AppendLog
from leadform.consent import example_payload
from leadform.models import ConsentRecord


def synchronous(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA synchronous").scalar()


def test_leads_wait_for_the_disk_and_consent_records_do_not(app) -> None:
    with app.app_context():
        assert synchronous(db.engine()) == 2             # FULL: fsync at every commit
        assert synchronous(db.engine(durable=False)) == 1  # NORMAL: fsync at checkpoints


def in_database_file(database: Path, tmp_path: Path) -> int:
    """Consent records in the database file alone, without its WAL: what a power cut would leave
    if the WAL had never reached the disk."""
    copy = tmp_path / "file-only.sqlite3"
    shutil.copyfile(database, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute("SELECT count(*) FROM consent_records").fetchone()[0]
    finally:
        conn.close()


def test_a_consent_record_is_in_the_database_file_within_seconds(app, client, tmp_path: Path) -> None:
    database = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
    with sqlite3.connect(database) as conn:  # the tables themselves into the file, as in a site running for a while
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    assert in_database_file(database, tmp_path) == 0
    assert client.post("/api/consent", json=example_payload()).status_code == 201
    assert client.post("/api/consent", json=example_payload()).status_code == 201
    deadline = time.monotonic() + 5
    while in_database_file(database, tmp_path) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert in_database_file(database, tmp_path) == 2, "the WAL was not checkpointed within 5 s"
    assert app.extensions["leadform.wal_sync"].syncs >= 1


def test_a_row_without_a_column_sqlalchemy_would_have_filled_is_refused(app) -> None:
    records = AppendLog(ConsentRecord.__table__)
    with app.app_context(), pytest.raises(ValueError, match="id"):
        records.append(db.engine(durable=False), app.extensions["leadform.wal_sync"],
                       {"subject_id": "0" * 32, "event": "given"})


def test_the_sync_thread_ends_once_its_app_is_gone(make_app, monkeypatch) -> None:
    monkeypatch.setattr(append_log, "IDLE_CHECK", 0.1)
    before = {t for t in threading.enumerate() if t.name == "leadform-wal-sync"}
    app = make_app()
    assert app.test_client().post("/api/consent", json=example_payload()).status_code == 201
    (thread,) = {t for t in threading.enumerate() if t.name == "leadform-wal-sync"} - before
    deadline = time.monotonic() + 5
    while app.extensions["leadform.wal_sync"].syncs < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    del app
    gc.collect()
    thread.join(5)
    assert not thread.is_alive(), "the thread (and the database connections it holds) outlived its app"
