"""`kill -9` in the middle of the load: of one worker, and of the whole server (master and workers).

No acknowledged submission is lost (each request that got its 303/201 has its row, and
nothing is half-written), and the outbox picks up after the crash: every queued mail
reaches the real SMTP server exactly once. Visitors whose request died with the process
press again (the clients retry on a connection error), as a person would.

The one duplicate SMTP allows: a process killed after the server accepted a mail and
before the outbox marked it 'sent'. The row stays 'sending', is taken up again after
OUTBOX_LEASE_SECONDS and the mail arrives twice. That window is a few milliseconds per
mail (longer while the database is busy), so a kill hits it now and then; the test
allows it only for a mail that was 'sending' at the moment of the kill, at most one
per killed process, and prints how often it happened.
"""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import ENGINE, ROOT, free_port
from support.load import (
    Gunicorn,
    Load,
    Store,
    app_env,
    assert_each_mail_once,
    assert_nothing_lost,
    make_tasks,
    wait_until,
)

FLOWS = {"checklist": 250, "contact": 100, "consent": 250}
# Seconds after which a 'sending' row counts as abandoned by a crash (300 in production). Longer than a
# live worker can take to send a mail and record it (SMTP timeout 2 s, a wait for the write lock) even
# on a busy 2-core machine, or a slow live worker's mail would be taken over and sent twice.
LEASE = 15


# Generous bounds: on a busy 2-core CI machine the load can start slowly; the kill still lands mid-load
# because the clients keep submitting until every task is answered.
LOAD_WAIT = 150
LOAD_SECONDS = 240


def stored_rows(store: Store) -> int:
    return store.scalar("SELECT (SELECT count(*) FROM leads) + (SELECT count(*) FROM contact_messages) "
                        "+ (SELECT count(*) FROM consent_records)")


def sending(store: Store) -> set[int]:
    return set(store.column("SELECT id FROM outbox WHERE status = 'sending'"))


def start(tmp_path, pdf_dir, smtp_port: int) -> tuple[Gunicorn, Store]:
    port = free_port()
    env = app_env(tmp_path / "instance", pdf_dir, port, smtp_port, OUTBOX_LEASE_SECONDS=LEASE)
    server = Gunicorn(env, port, tmp_path / "gunicorn.log").start()
    return server, Store.of(tmp_path / "instance")


def test_kill_9_of_workers_mid_load_loses_nothing(tmp_path, pdf_dir, smtp_server, capsys) -> None:
    server, store = start(tmp_path, pdf_dir, smtp_server.port)
    try:
        load = Load(server.port, make_tasks(FLOWS, "worker"), processes=3, threads=8, seconds=LOAD_SECONDS, retry=True)
        killed, in_flight = [], set()
        for fraction in (0.25, 0.6):
            wait_until(lambda f=fraction: stored_rows(store) >= f * sum(FLOWS.values()), LOAD_WAIT, "the load")
            killed.append(server.kill_worker())
            in_flight |= sending(store)
        outcomes = load.wait()
        wait_until(lambda: len(server.worker_pids()) == 4, 30, "gunicorn to replace the killed workers")
        assert not set(killed) & set(server.worker_pids())
        rows = assert_nothing_lost(store, outcomes)
        mails, twice = assert_each_mail_once(store, smtp_server, timeout=LEASE + 40, in_flight=in_flight,
                                             killed=len(killed))
    finally:
        server.stop()
    errors = sum(len(o.errors) for o in outcomes)
    assert all(o.status is not None for o in outcomes), "every visitor got an answer after pressing again"
    with capsys.disabled():
        print(f"\n[crash] {ENGINE}: kill -9 of {len(killed)} workers mid-load: {len(outcomes)} submissions, "
              f"{errors} connection errors (retried), rows {rows}, all acknowledged stored, {store.checked}; "
              f"{mails} mails delivered, {len(twice)} twice (SMTP accepted, then killed before 'sent')")


def test_kill_9_of_the_whole_server_mid_load_loses_nothing(tmp_path, pdf_dir, smtp_server, capsys) -> None:
    server, store = start(tmp_path, pdf_dir, smtp_server.port)
    try:
        load = Load(server.port, make_tasks(FLOWS, "server"), processes=3, threads=8, seconds=LOAD_SECONDS, retry=True)
        wait_until(lambda: stored_rows(store) >= 0.3 * sum(FLOWS.values()), LOAD_WAIT, "the load")
        server.kill_all()
        in_flight = sending(store)
        before_restart = stored_rows(store)
        time.sleep(1)  # visitors meet a dead server and keep pressing
        server.start()
        # The cron safety net runs beside the workers' own delivery threads; neither sends a mail twice.
        cron = subprocess.run([sys.executable, "-m", "flask", "--app", "leadform", "outbox", "send"], cwd=ROOT,
                              env=server.env, capture_output=True, text=True, timeout=120)
        assert cron.returncode == 0, cron.stderr
        outcomes = load.wait()
        rows = assert_nothing_lost(store, outcomes)
        mails, twice = assert_each_mail_once(store, smtp_server, timeout=LEASE + 40, in_flight=in_flight,
                                             killed=4)  # the workers; the master sends no mail
    finally:
        server.stop()
    errors = sum(len(o.errors) for o in outcomes)
    assert errors > 0, "the kill happened while visitors were submitting"
    assert all(o.status is not None for o in outcomes)
    with capsys.disabled():
        print(f"\n[crash] {ENGINE}: kill -9 of master + 4 workers mid-load ({before_restart} rows stored then), "
              "restart: "
              f"{len(outcomes)} submissions, {errors} connection errors (retried), rows {rows}, all acknowledged "
              f"stored, {store.checked}; cron `outbox send`: {cron.stdout.strip()}; {mails} mails delivered, "
              f"{len(twice)} twice (SMTP accepted, then killed before 'sent')")
