"""The SQLite write lock: writers queue on a kernel lock, and the lock never costs a stored row."""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import threading
import time
from pathlib import Path

from sqlalchemy import func, insert, select

from leadform import db
from leadform.models import PageView, utcnow
from leadform.write_lock import WriteLock


def page_views(app) -> int:
    with app.app_context(), db.transaction() as s:
        return s.scalar(select(func.count()).select_from(PageView))


def add_view(app, path: str) -> None:
    with app.app_context(), db.transaction() as s:
        s.execute(insert(PageView), [{"day": utcnow().date(), "path": path, "count": 1}])


def test_writes_from_many_threads_all_commit(app) -> None:
    def writer(n: int) -> None:
        for i in range(25):
            add_view(app, f"/t{n}/{i}/")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert page_views(app) == 200
    assert Path(app.instance_path, "leadform.sqlite3-writelock").exists()


def test_a_failed_transaction_releases_the_lock_for_the_next_visitor(app) -> None:
    add_view(app, "/a/")
    try:
        add_view(app, "/a/")  # same (day, path): the unique constraint fails, the transaction rolls back
    except Exception as exc:  # noqa: BLE001 - any database error will do
        assert "UNIQUE" in str(exc)
    else:
        raise AssertionError("the duplicate row was accepted")
    done = threading.Event()
    threading.Thread(target=lambda: (add_view(app, "/b/"), done.set()), daemon=True).start()
    assert done.wait(timeout=5), "the lock stayed held after a rollback"
    assert page_views(app) == 2


def test_same_thread_asking_again_goes_ahead_instead_of_deadlocking(tmp_path: Path) -> None:
    lock = WriteLock(str(tmp_path / "x-writelock"), timeout=30)
    assert lock.acquire() is True
    assert lock.acquire() is False  # a nested transaction: SQLite's own locking decides
    other = threading.Event()

    def contender() -> None:
        if lock.acquire():
            other.set()
            lock.release()

    thread = threading.Thread(target=contender, daemon=True)
    thread.start()
    assert not other.wait(timeout=0.5), "another thread got the lock while it was held"
    lock.release()
    assert other.wait(timeout=5)


def test_an_unusable_lock_file_still_stores_the_row(make_app, tmp_path: Path, caplog) -> None:
    instance = tmp_path / "instance"
    (instance / "leadform.sqlite3-writelock").mkdir(parents=True)  # a folder where the lock file should be
    app = make_app()
    with caplog.at_level(logging.WARNING, logger="leadform.db"):
        add_view(app, "/still-stored/")
    assert page_views(app) == 1
    assert "database write lock file unusable" in caplog.text


def _hold_in_other_process(database: str, holding, release) -> None:
    """Another gunicorn worker, as it were: takes the lock, writes, and commits only when told."""
    from leadform.db import make_engine

    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(insert(PageView), [{"day": utcnow().date(), "path": "/other-process/", "count": 1}])
        holding.set()
        release.wait(timeout=60)
    engine.dispose()


def test_a_writer_waits_for_another_process_and_goes_on_when_it_commits(app) -> None:
    database = str(Path(app.instance_path) / "leadform.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    holding, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_in_other_process, args=(database, holding, release))
    other.start()
    try:
        assert holding.wait(timeout=60)
        done = threading.Event()
        threading.Thread(target=lambda: (add_view(app, "/this-process/"), done.set()), daemon=True).start()
        assert not done.wait(timeout=1), "wrote while another process held the write lock"
        release.set()
        assert done.wait(timeout=10)
    finally:
        release.set()
        other.join(timeout=30)
    assert other.exitcode == 0
    assert page_views(app) == 2


def test_a_short_wait_gives_up_quietly_and_leaves_the_lock_usable(tmp_path: Path, caplog) -> None:
    """The WAL sync asks with a short wait: another process holding the lock (another open file on
    the lock file, as another worker has) makes it give up in time, without a warning, and without
    keeping this process's thread lock."""
    path = tmp_path / "x-writelock"
    lock = WriteLock(str(path), timeout=30)
    other = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        with caplog.at_level(logging.WARNING, logger="leadform.db"):
            started = time.monotonic()
            assert lock.acquire(wait=0.05) is False
            assert time.monotonic() - started < 2
        assert caplog.text == ""
        fcntl.flock(other, fcntl.LOCK_UN)
        assert lock.acquire(wait=0.05) is True  # the thread lock was given back
        lock.release()
    finally:
        os.close(other)
