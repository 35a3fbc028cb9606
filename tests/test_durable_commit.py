"""A lead or a message is on disk before the visitor is thanked, and waiting for the disk holds up
no other visitor: the WAL is synced after the commit has let go of the write lock (leadform/wal_file.py)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import insert
from test_append_log import in_database_file
from test_contact import started

from leadform import db, wal_file
from leadform.consent import example_payload
from leadform.models import PageView, utcnow

FORM = {"name": "Sofie Peeters", "email": "sofie.peeters@example.be", "privacy": "y"}
CONTACT = {**FORM, "subject": "teamcoaching", "message": "Kunnen we eens bellen?"}


def database_of(app) -> str:
    return app.config["DATABASE_URL"].removeprefix("sqlite:///")


def leads_visible(database: str) -> int:
    """Leads a separate connection sees: committed ones, whether or not they are on disk yet."""
    conn = sqlite3.connect(database)
    try:
        return conn.execute("SELECT count(*) FROM leads").fetchone()[0]
    finally:
        conn.close()


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every fdatasync/fsync wal_file makes, as (call, file), after the real call."""
    made: list[tuple[str, str]] = []
    for name in ("fdatasync", "fsync"):
        real = getattr(os, name)

        def recording(fd: int, real=real, name=name) -> None:
            real(fd)
            made.append((name, os.readlink(f"/proc/self/fd/{fd}")))

        monkeypatch.setattr(wal_file.os, name, recording)
    return made


def test_a_lead_is_synced_to_disk_after_its_commit_and_before_the_answer(app, client, monkeypatch) -> None:
    database = database_of(app)
    client.get("/api/health")
    seen_at_sync: list[tuple[str, int]] = []
    real = os.fdatasync

    def fdatasync_seeing(fd: int) -> None:
        seen_at_sync.append((os.readlink(f"/proc/self/fd/{fd}"), leads_visible(database)))
        real(fd)

    monkeypatch.setattr(wal_file.os, "fdatasync", fdatasync_seeing)
    assert client.post("/api/checklists/teams", data=FORM).status_code == 303
    # the commit was done (another connection sees the lead) when the sync started, and the answer came after it
    assert seen_at_sync == [(f"{database}-wal", 1)]


def test_a_contact_message_is_synced_and_a_consent_record_waits_for_the_background_sync(app, client, syncs) -> None:
    database = database_of(app)
    client.post("/api/consent", json=example_payload())  # the WAL exists from here on
    before = len(syncs)
    assert client.post("/api/consent", json=example_payload()).status_code == 201
    assert syncs[before:] == [], "a consent record waited for the disk"
    assert client.post("/api/contact", data={**CONTACT, "started": started(app, 10)}).status_code == 303
    assert ("fdatasync", f"{database}-wal") in syncs[before:]


def test_a_transaction_that_changed_nothing_does_not_wait_for_the_disk(app, syncs) -> None:
    with app.app_context():
        first = len(syncs)
        with db.transaction() as s:  # an ORM session's commit syncs too (downloads, the outbox, the CLI)
            s.execute(insert(PageView), {"day": utcnow().date(), "path": "/a/", "count": 1})
        assert len(syncs) == first + 1
        before = len(syncs)
        with db.transaction() as s:
            s.scalar(PageView.__table__.select().limit(1))
    assert len(syncs) == before


def test_the_wal_sqlite_writes_is_synced_when_the_database_path_is_a_symlink(make_app, tmp_path: Path, syncs) -> None:
    real = tmp_path / "volume" / "leadform.sqlite3"
    real.parent.mkdir()
    sqlite3.connect(real).close()
    link = tmp_path / "link.sqlite3"
    link.symlink_to(real)
    app = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=f"sqlite:///{link}")
    assert app.test_client().post("/api/checklists/teams", data=FORM).status_code == 303
    assert ("fdatasync", f"{real}-wal") in syncs


def test_without_a_wal_sqlite_syncs_inside_the_commit(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "journal.sqlite3")
    try:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
        assert wal_file.durable_commits(conn) is None  # db.py then sets synchronous=FULL
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        commits = wal_file.durable_commits(conn)
        assert commits is not None and commits.wal == f"{tmp_path / 'journal.sqlite3'}-wal"
    finally:
        conn.close()


def test_a_slow_disk_sync_does_not_hold_up_the_next_writer(app, client, monkeypatch) -> None:
    """One visitor's flush to a slow disk; another visitor's lead is committed and thanked meanwhile."""
    database = database_of(app)
    client.post("/api/checklists/teams", data={**FORM, "email": "eerste@example.be"})
    in_sync, release = threading.Event(), threading.Event()
    real = os.fdatasync

    def slow_fdatasync(fd: int) -> None:
        if threading.current_thread().name == "slow":
            in_sync.set()
            release.wait(10)
        real(fd)

    monkeypatch.setattr(wal_file.os, "fdatasync", slow_fdatasync)
    answers: list[int] = []
    slow = threading.Thread(name="slow", target=lambda: answers.append(
        app.test_client().post("/api/checklists/teams", data={**FORM, "email": "traag@example.be"}).status_code))
    slow.start()
    try:
        assert in_sync.wait(5)
        assert not answers, "the slow visitor was thanked before its lead was on disk"
        started_at = time.monotonic()
        assert client.post("/api/checklists/teams", data={**FORM, "email": "vlot@example.be"}).status_code == 303
        assert time.monotonic() - started_at < 2, "the second writer waited for the first one's disk sync"
        assert leads_visible(database) == 3
    finally:
        release.set()
        slow.join(10)
    assert answers == [303]


def test_a_failed_disk_sync_is_not_answered_as_stored_and_later_commits_wait_for_a_full_copy(
        app, client, monkeypatch, caplog, tmp_path: Path) -> None:
    """A failed fdatasync may have lost the WAL's pages even if a later one succeeds (Linux reports the
    failure once): the visitor hears it did not work, and the next commit first checkpoints the WAL
    into the database file. The failed request's lead was committed; asking again updates it."""
    database = database_of(app)

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    client.post("/api/checklists/teams", data={**FORM, "email": "eerste@example.be"})
    keeper = sqlite3.connect(database)  # another worker's connection: closing ours does not checkpoint
    keeper.execute("SELECT 1 FROM leads").fetchall()
    monkeypatch.setattr(wal_file.os, "fdatasync", broken)
    response = client.post("/api/checklists/teams", data=FORM)
    assert response.status_code == 503
    page = response.get_data(as_text=True)
    assert "Er is niets verloren" in page and "sofie.peeters@example.be" in page
    assert "checklist request not stored" in caplog.text
    monkeypatch.undo()
    answers: list[int] = []  # from another thread: a lock left held by the failure would block it
    retry = threading.Thread(target=lambda: answers.append(
        app.test_client().post("/api/checklists/teams", data=FORM).status_code), daemon=True)
    retry.start()
    retry.join(10)
    assert answers == [303]
    assert in_database_file(database, tmp_path, "leads") == 2, "the WAL was not copied into the database file"
    assert leads_visible(database) == 2  # the retry updated the lead the failed request had committed
    keeper.close()
