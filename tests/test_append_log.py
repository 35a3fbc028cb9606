"""Consent records skip the per-commit fsync, and still reach the disk within seconds; leads never skip it."""

from __future__ import annotations

import datetime as dt
import gc
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import insert

from leadform import append_log, db, wal_file
from leadform.append_log import AppendLog
from leadform.consent import example_payload
from leadform.models import ConsentRecord


def synchronous(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA synchronous").scalar()


def test_neither_engine_syncs_inside_the_write_lock(app) -> None:
    """NORMAL on both: the durable engine syncs after the lock (tests/test_durable_commit.py)."""
    with app.app_context():
        assert synchronous(db.engine()) == synchronous(db.engine(durable=False)) == 1
        for engine in (db.engine(), db.engine(durable=False)):  # whichever starts the WAL over cuts it back
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == append_log.WAL_LIMIT


def in_database_file(database: Path | str, tmp_path: Path, table: str = "consent_records") -> int:
    """Rows of `table` in the database file alone, without its WAL: what a power cut would leave
    if the WAL had never reached the disk."""
    copy = tmp_path / "file-only.sqlite3"
    shutil.copyfile(database, copy)
    conn = sqlite3.connect(copy)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - a test's own table name
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


def test_the_wal_is_synced_even_while_a_reader_holds_back_the_checkpoint(app, client, monkeypatch) -> None:
    """A long read (`db backup` copying the file) keeps a checkpoint from copying, and from syncing:
    the WAL file itself must still reach the disk."""
    database = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(wal_file.os, "fsync", recording_fsync)
    reader = sqlite3.connect(database, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM consent_records").fetchone()  # a read snapshot, held open
        assert client.post("/api/consent", json=example_payload()).status_code == 201
        deadline = time.monotonic() + 5
        while f"{database}-wal" not in synced and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"{database}-wal" in synced, "the WAL was not synced while a reader was open"
    finally:
        reader.close()


def test_stored_times_are_written_as_sqlalchemy_writes_them(app) -> None:
    """The same datetime through this path and through SQLAlchemy Core gives the same text in the file,
    also on a whole second (sqlite3's own adapter would drop the microseconds there)."""
    when = dt.datetime(2026, 1, 1, 12, 0, 0)
    row = {"subject_id": "0" * 32, "event": "given", "created_at": when, "choices": {"necessary": True},
           "button": "accept_all", "policy_version": 1, "banner_hash": "0123456789abcdef",
           "expires_at": when, "site_build": "test", "email": None}
    with app.app_context():
        AppendLog(ConsentRecord.__table__).append(db.engine(durable=False), app.extensions["leadform.wal_sync"],
                                                  {**row, "id": "a" * 32})
        with db.engine().begin() as conn:
            conn.execute(insert(ConsentRecord.__table__), {**row, "id": "b" * 32})
    database = app.config["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        stored = dict(conn.execute("SELECT id, created_at || ' ' || choices FROM consent_records").fetchall())
    assert stored["a" * 32] == stored["b" * 32] == '2026-01-01 12:00:00.000000 {"necessary": true}'


def test_a_database_that_cannot_be_opened_answers_503_and_recovers(make_app, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    app = make_app(DATABASE_URL=f"sqlite:///{folder / 'leadform.sqlite3'}")
    client = app.test_client()
    assert client.post("/api/consent", json=example_payload()).status_code == 201
    with app.app_context():
        db.engine(durable=False).dispose()  # a new worker: no connection open yet
    folder.rename(tmp_path / "elsewhere")  # an unmounted volume, say
    try:
        response = client.post("/api/consent", json=example_payload())
        assert response.status_code == 503
    finally:
        (tmp_path / "elsewhere").rename(folder)
    assert client.post("/api/consent", json=example_payload()).status_code == 201


def wal_restarts(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time the WAL starts over."""
    with wal.open("rb") as f:
        return int.from_bytes(f.read(16)[12:16], "big")


def test_the_wal_starts_over_under_a_steady_stream_of_records(app, client) -> None:
    """Records keep coming while the sync thread checkpoints: once the WAL is larger than its limit, it
    must start over from its beginning, not grow by every record (it reached 200 MB in 10 s of bench
    load)."""
    syncer = app.extensions["leadform.wal_sync"]
    syncer.delay = 0.1  # read when the thread starts, at the first record
    syncer.restart_frames = 100
    wal = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///") + "-wal")
    assert client.post("/api/consent", json=example_payload()).status_code == 201
    first, deadline = wal_restarts(wal), time.monotonic() + 3
    while time.monotonic() < deadline and wal_restarts(wal) < first + 3:
        assert client.post("/api/consent", json=example_payload()).status_code == 201
    assert wal_restarts(wal) >= first + 3, f"the WAL started over {wal_restarts(wal) - first} times in 3 s"
