"""The database cannot be written (disk full, file read-only): the visitor gets the Dutch
"probeer het later opnieuw" page (503) with the form still filled in, nothing is half-written,
and once the fault is gone the next submission succeeds without anyone repairing anything. The
consent POST answers 503 and recovers the same way.

The faults are real, made by the kernel: a tiny tmpfs filled to the last byte (ENOSPC, SQLite's
SQLITE_FULL), and the database file, its WAL and its folder made immutable with `chattr +i`
(EPERM for every write, which stops root too, unlike chmod). Both need root, as CI and the
project's machines run; elsewhere the tests fail and say so. The -shm file is left writable: it
is memory-mapped, and a write fault there kills the process (SIGBUS) rather than failing a write.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from leadform import db
from leadform.consent import example_payload
from leadform.forms import issue_started

CHECKLIST = {"name": "Jan Janssens", "email": "jan@example.be", "privacy": "y"}
MESSAGE = "Kunnen we volgende week bellen over een traject voor ons team van twaalf mensen?"


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.fail(f"this test needs root to {what} (CI and the project's machines run as root)")


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 2 MiB tmpfs of its own, unmounted after the test."""
    need_root("mount a small tmpfs")
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"cannot mount a tmpfs: {result.stderr}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(folder: Path) -> Path:
    """Write a ballast file until the filesystem says ENOSPC."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    os.close(fd)
    return ballast


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                for t in ("leads", "downloads", "contact_messages", "outbox", "consent_records")}
    finally:
        conn.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def contact_form(app, **overrides: str) -> dict[str, str]:
    with app.test_request_context():
        started = issue_started(backdate=60)  # the visitor took a minute to type
    return {"name": "Jan Janssens", "email": "jan@example.be", "subject": "teamcoaching", "message": MESSAGE,
            "privacy": "y", "started": started, **overrides}


def assert_try_again_page(response, *values: str) -> None:
    html = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Probeer het later opnieuw" in html
    assert 'lang="nl"' in html
    for value in values:
        assert value in html, f"{value!r} not kept in the form"
    assert "Traceback" not in html and "sqlite" not in html.lower()


def assert_fault_handled(app, database: Path) -> None:
    """Both forms answer 503 with everything typed still there, and store nothing at all."""
    client = app.test_client()
    before = counts(database)
    other = {**CHECKLIST, "email": "an@example.be", "name": "An Peeters"}
    assert_try_again_page(client.post("/api/checklists/teams", data=other), 'value="An Peeters"',
                          'value="an@example.be"')
    assert_try_again_page(client.post("/api/contact", data=contact_form(app)), 'value="Jan Janssens"', MESSAGE)
    assert client.post("/api/consent", json=example_payload()).status_code == 503
    assert counts(database) == before, "a refused submission left rows behind"


def assert_recovered(app, database: Path) -> None:
    """No restart, no repair: the next submissions go through and the file is sound."""
    client = app.test_client()
    before = counts(database)
    assert client.post("/api/checklists/teams", data={**CHECKLIST, "email": "an@example.be"}).status_code == 303
    assert client.post("/api/contact", data=contact_form(app)).status_code == 303
    assert client.post("/api/consent", json=example_payload()).status_code == 201
    after = counts(database)
    assert after == {"leads": before["leads"] + 1, "downloads": before["downloads"] + 1,
                     "contact_messages": before["contact_messages"] + 1, "outbox": before["outbox"] + 3,
                     "consent_records": before["consent_records"] + 1}
    assert integrity(database) == "ok"


def test_disk_full_shows_try_again_with_the_form_and_recovers(make_app, tiny_disk: Path) -> None:
    database = tiny_disk / "leadform.sqlite3"
    app = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=f"sqlite:///{database}")
    assert app.test_client().post("/api/checklists/teams", data=CHECKLIST).status_code == 303
    # Empty the WAL, so the next commit must grow a file on the full disk.
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    ballast = fill(tiny_disk)

    assert_fault_handled(app, database)

    ballast.unlink()
    assert_recovered(app, database)


@pytest.fixture
def immutable(tmp_path: Path):
    """`chattr +i` on the given paths, always undone after the test."""
    need_root("make files immutable with chattr")
    locked: list[Path] = []

    def lock(*paths: Path) -> None:
        result = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
        assert result.returncode == 0, f"chattr +i failed (the temp folder needs ext4 or xfs): {result.stderr}"
        locked.extend(paths)

    def unlock() -> None:
        if locked:
            subprocess.run(["chattr", "-i", *map(str, locked)], check=True, capture_output=True)
            locked.clear()

    lock.unlock = unlock  # type: ignore[attr-defined]
    yield lock
    unlock()


def read_only_setup(make_app, tmp_path: Path):
    folder = tmp_path / "data"
    database = folder / "leadform.sqlite3"
    app = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=f"sqlite:///{database}")
    assert app.test_client().post("/api/checklists/teams", data=CHECKLIST).status_code == 303
    assert Path(f"{database}-wal").exists()
    return app, folder, database


def test_database_turning_read_only_while_open_shows_try_again_and_recovers(make_app, tmp_path, immutable) -> None:
    app, folder, database = read_only_setup(make_app, tmp_path)
    immutable(database, Path(f"{database}-wal"), folder)

    assert_fault_handled(app, database)

    immutable.unlock()
    assert_recovered(app, database)


def test_connection_opened_while_read_only_does_not_stay_read_only(make_app, tmp_path, immutable) -> None:
    """A connection opened during the fault (a worker starting, the pool growing) is read-only for
    good in SQLite; the app must not keep it, or it would refuse every visitor until a restart."""
    app, folder, database = read_only_setup(make_app, tmp_path)
    immutable(database, Path(f"{database}-wal"), folder)
    with app.app_context():
        db.engine().dispose()  # what a new worker has: no connection opened before the fault

    assert_fault_handled(app, database)

    immutable.unlock()
    assert_recovered(app, database)


# -- SQLite's writers take turns (db.WriterQueue) ---------------------------------------------------------

def writer_lock_free(database: Path) -> bool:
    """Whether another writer could start now: an flock on its own descriptor, as another process takes it."""
    fd = os.open(f"{database}-writer", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


@pytest.mark.sqlite_only(reason="the turn-taking of SQLite's writers; PostgreSQL queues its own")
def test_a_write_holds_its_turn_until_it_ends_however_it_ends(make_app, tmp_path: Path) -> None:
    """A write keeps the next writer out from its start to its end, and lets it in the moment it ends,
    committed or rolled back: a turn never handed back would stop every form of the site."""
    database = tmp_path / "turns.sqlite3"
    app = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=f"sqlite:///{database}")
    assert app.test_client().post("/api/checklists/teams", data=CHECKLIST).status_code == 303
    assert writer_lock_free(database)
    with app.app_context():
        with db.transaction() as s:
            s.execute(text("SELECT count(*) FROM leads"))
            assert not writer_lock_free(database)
        assert writer_lock_free(database)
        with pytest.raises(ZeroDivisionError), db.transaction() as s:
            s.execute(text("SELECT count(*) FROM leads"))
            assert not writer_lock_free(database)
            1 / 0  # noqa: B018 - a write that fails halfway
        assert writer_lock_free(database)
    again = {**CHECKLIST, "email": "an@example.be"}
    assert app.test_client().post("/api/checklists/teams", data=again).status_code == 303


@pytest.mark.sqlite_only(reason="the turn-taking of SQLite's writers; PostgreSQL queues its own")
def test_a_form_waits_for_the_write_before_it_and_is_stored(make_app, tmp_path: Path) -> None:
    """Another process (a cron job, a second worker) is writing: the visitor's form waits its turn and
    is stored, no error."""
    database = tmp_path / "turns.sqlite3"
    app = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=f"sqlite:///{database}")
    client = app.test_client()
    assert client.post("/api/checklists/teams", data=CHECKLIST).status_code == 303
    other = os.open(f"{database}-writer", os.O_RDWR)  # its own descriptor: another writer, as a process is
    fcntl.flock(other, fcntl.LOCK_EX)
    threading.Timer(0.5, lambda: os.close(other)).start()  # that write ends half a second later
    started = time.monotonic()
    assert client.post("/api/checklists/teams", data={**CHECKLIST, "email": "an@example.be"}).status_code == 303
    assert time.monotonic() - started >= 0.4, "the form did not wait for the write before it"
    assert counts(database)["leads"] == 2


@pytest.mark.sqlite_only(reason="the turn-taking of SQLite's writers; PostgreSQL queues its own")
def test_a_form_that_cannot_get_its_turn_in_time_says_try_again_and_keeps_nothing_half(
        make_app, tmp_path: Path, monkeypatch) -> None:
    """A write in this process that runs past the busy timeout: the visitor gets the Dutch try-again page
    with the form filled in, as for any locked database, and the next submission goes through."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 300)
    database = tmp_path / "turns.sqlite3"
    app = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=f"sqlite:///{database}")
    assert app.test_client().post("/api/checklists/teams", data=CHECKLIST).status_code == 303
    writing, done = threading.Event(), threading.Event()

    def long_write() -> None:
        with app.app_context(), db.transaction() as s:
            s.execute(text("SELECT count(*) FROM leads"))
            writing.set()
            done.wait(10)

    holder = threading.Thread(target=long_write)
    holder.start()
    try:
        assert writing.wait(5)
        before = counts(database)
        other = {**CHECKLIST, "email": "an@example.be", "name": "An Peeters"}
        assert_try_again_page(app.test_client().post("/api/checklists/teams", data=other), 'value="An Peeters"')
        assert counts(database) == before
    finally:
        done.set()
        holder.join(10)
    again = {**CHECKLIST, "email": "an@example.be"}
    assert app.test_client().post("/api/checklists/teams", data=again).status_code == 303
