"""`flask --app leadform db backup PATH` while visitors keep submitting: the copy is one
consistent snapshot holding every row committed before the backup started, and a restored copy
runs the app. SQLite: the online backup API, checked with integrity_check. PostgreSQL: pg_dump,
restored with pg_restore."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT
from support.postgres import throwaway_database

OLD_LEADS = 3000  # already there, so the copy takes a moment


def prefill(database: Path) -> None:
    """A few thousand earlier leads, each with its download link and its (delivered) mail."""
    body = "Dag,\n\nHier is je checklist.\n" * 100
    with sqlite3.connect(database) as conn:
        conn.executemany(
            "INSERT INTO leads (id, checklist, email, name, newsletter_requested, created_at, updated_at, "
            "request_count) VALUES (?, 'teams', ?, 'Oud', 0, '2026-01-01', '2026-01-01', 1)",
            [(i, f"old-{i}@example.be") for i in range(1, OLD_LEADS + 1)])
        conn.executemany(
            "INSERT INTO downloads (lead_id, token_hash, created_at, expires_at, use_count) "
            "VALUES (?, ?, '2026-01-01', '2026-01-15', 0)", [(i, f"{i:064x}") for i in range(1, OLD_LEADS + 1)])
        conn.executemany(
            "INSERT INTO outbox (created_at, kind, to_addr, subject, body_text, headers, message_id, status, "
            "attempts, next_attempt_at, lead_id) VALUES ('2026-01-01', 'checklist_link', ?, 'Je checklist', ?, "
            "'{}', ?, 'sent', 1, '2026-01-01', ?)",
            [(f"old-{i}@example.be", body, f"<old-{i}@example.be>", i) for i in range(1, OLD_LEADS + 1)])


@pytest.mark.sqlite_only(reason="SQLite's online backup of the database file; pg_dump has its own test below")
def test_online_backup_while_writing_has_every_committed_row(make_app, tmp_path: Path, pdf_dir, capsys) -> None:
    app = make_app(WTF_CSRF_ENABLED=False, SECRET_KEY="backup-test-secret")
    database = Path(app.config["DATABASE_URL"].removeprefix("sqlite:///"))
    prefill(database)

    acked: list[tuple[float, str]] = []
    stop = threading.Event()

    def visitor(n: int) -> None:
        client = app.test_client()
        i = 0
        while not stop.is_set() and i < 5000:
            email = f"new-{n}-{i}@example.be"
            if client.post("/api/checklists/teams", data={"name": "Nieuw", "email": email,
                                                          "privacy": "y"}).status_code == 303:
                acked.append((time.time(), email))
            i += 1

    writers = [threading.Thread(target=visitor, args=(n,)) for n in range(3)]
    for thread in writers:
        thread.start()
    try:
        while len(acked) < 30:
            time.sleep(0.01)
        committed_before = {email for _, email in acked}
        started = time.time()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADFORM_")},
               "LEADFORM_SECRET_KEY": "backup-test-secret", "LEADFORM_INSTANCE_PATH": app.instance_path,
               "LEADFORM_DATABASE_URL": app.config["DATABASE_URL"], "LEADFORM_PDF_DIR": str(pdf_dir)}
        target = tmp_path / "backups" / "leadform-backup.sqlite3"
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "leadform", "db", "backup", str(target)],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        ended = time.time()
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in writers:
            thread.join()

    assert result.returncode == 0, result.stderr
    assert "integrity ok" in result.stdout
    during = [email for at, email in acked if started <= at <= ended]
    assert during, "visitors kept submitting while the backup ran"

    copy = sqlite3.connect(target)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
        emails = {row[0] for row in copy.execute("SELECT email FROM leads")}
        orphans = copy.execute("SELECT count(*) FROM leads WHERE id NOT IN (SELECT lead_id FROM downloads) "
                               "OR id NOT IN (SELECT lead_id FROM outbox)").fetchone()[0]
        copied = copy.execute("SELECT count(*) FROM downloads").fetchone()[0]
        mails = copy.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        copy.close()
    assert {f"old-{i}@example.be" for i in range(1, OLD_LEADS + 1)} <= emails
    assert committed_before <= emails, f"missing: {sorted(committed_before - emails)[:3]}"
    assert emails <= {f"old-{i}@example.be" for i in range(1, OLD_LEADS + 1)} | {e for _, e in acked}
    assert orphans == 0 and copied == mails == len(emails), "the copy is one consistent moment"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert not list(target.parent.glob("*.partial"))

    # Restore: the copy becomes the database of a fresh instance, which serves visitors again.
    restored = tmp_path / "restored" / "leadform.sqlite3"
    restored.parent.mkdir()
    shutil.copy(target, restored)
    fresh = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=f"sqlite:///{restored}",
                     INSTANCE_PATH=str(tmp_path / "restored"))
    with sqlite3.connect(restored) as check:  # back in WAL mode, so leads are synced outside the write lock
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    exported = fresh.test_cli_runner().invoke(args=["leads", "export"]).output
    assert exported.count("@example.be") == len(emails)
    assert fresh.test_client().post("/api/checklists/teams", data={"name": "Na", "email": "na@example.be",
                                                                   "privacy": "y"}).status_code == 303
    with capsys.disabled():
        print(f"\n[backup] {len(emails)} leads in the copy ({len(committed_before)} new ones committed before it "
              f"started, all there); {len(during)} submissions acknowledged while `db backup` ran; "
              f"{target.stat().st_size // 1024} KiB; integrity ok; restored copy serves again")


@pytest.mark.postgresql
def test_pg_dump_backup_while_writing_restores_into_a_database_that_serves(make_app, tmp_path: Path, pdf_dir) -> None:
    with throwaway_database() as url, throwaway_database() as restored_url:
        app = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=url)
        client = app.test_client()
        for i in range(20):
            assert client.post("/api/checklists/teams", data={"name": "Voor", "email": f"voor-{i}@example.be",
                                                              "privacy": "y"}).status_code == 303
        stop = threading.Event()
        during: list[str] = []

        def visitor() -> None:
            writer = app.test_client()
            while not stop.is_set() and len(during) < 2000:
                email = f"tijdens-{len(during)}@example.be"
                if writer.post("/api/checklists/teams", data={"name": "Tijdens", "email": email,
                                                              "privacy": "y"}).status_code == 303:
                    during.append(email)

        thread = threading.Thread(target=visitor)
        thread.start()
        try:
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEADFORM_")},
                   "LEADFORM_SECRET_KEY": "backup-test-secret", "LEADFORM_INSTANCE_PATH": app.instance_path,
                   "LEADFORM_DATABASE_URL": url, "LEADFORM_PDF_DIR": str(pdf_dir)}
            target = tmp_path / "backups" / "leadform.pgdump"
            result = subprocess.run([sys.executable, "-m", "flask", "--app", "leadform", "db", "backup", str(target)],
                                    cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        finally:
            stop.set()
            thread.join()
        app.extensions["leadform.engine"].dispose()
        assert result.returncode == 0, result.stderr
        assert "pg_dump custom format" in result.stdout
        assert oct(target.stat().st_mode & 0o777) == "0o600" and not list(target.parent.glob("*.partial"))

        libpq = restored_url.replace("postgresql+psycopg://", "postgresql://")
        restore = subprocess.run(["pg_restore", "--no-owner", f"--dbname={libpq}", str(target)],
                                 capture_output=True, text=True, timeout=120)
        assert restore.returncode == 0, restore.stderr
        fresh = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=restored_url, INSTANCE_PATH=str(tmp_path / "restored"))
        exported = fresh.test_cli_runner().invoke(args=["leads", "export"]).output
        assert all(f"voor-{i}@example.be" in exported for i in range(20)), "every row committed before it"
        copied = exported.count("@example.be")
        assert 20 <= copied <= 20 + len(during)
        assert fresh.test_client().post("/api/checklists/teams", data={"name": "Na", "email": "na@example.be",
                                                                       "privacy": "y"}).status_code == 303


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def test_daily_backup_keeps_the_14_newest_sends_one_off_the_machine_and_restores(engine: str, make_app,
                                                                                 tmp_path: Path, pdf_dir) -> None:
    """deploy/backup.sh as coach-backup.timer runs it, with 16 older backups present and a local restic
    repository standing in for the second host; then the database is lost and restored from the
    off-site copy with the steps of the README."""
    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{tmp_path / 'live' / 'leadform.sqlite3'}" if engine == "sqlite"
               else stack.enter_context(throwaway_database()))
        (tmp_path / "live").mkdir()
        app = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=url)
        client = app.test_client()
        for i in range(3):
            assert client.post("/api/checklists/teams", data={"name": "Bewaard", "email": f"bewaard-{i}@example.be",
                                                              "privacy": "y"}).status_code == 303
        backups = tmp_path / "backups"
        backups.mkdir()
        older = [f"leadform-2026-01-{day:02d}T024500Z.bak" for day in range(1, 17)]
        for name in older:
            (backups / name).write_text("an older backup")
        password = tmp_path / "restic-password"
        password.write_text("throwaway restic password\n")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("LEADFORM_", "RESTIC_"))},
               "LEADFORM_SECRET_KEY": "backup-test-secret", "LEADFORM_INSTANCE_PATH": app.instance_path,
               "LEADFORM_DATABASE_URL": url, "LEADFORM_PDF_DIR": str(pdf_dir), "BACKUP_DIR": str(backups),
               "COACH_FLASK": str(Path(sys.executable).parent / "flask"),
               "RESTIC_REPOSITORY": str(tmp_path / "offsite"), "RESTIC_PASSWORD_FILE": str(password),
               "RESTIC_CACHE_DIR": str(tmp_path / "restic-cache")}
        assert shutil.which("restic"), "restic not found: apt-get install -y restic"
        subprocess.run(["restic", "init", "--quiet"], env=env, check=True, capture_output=True, timeout=60)
        result = subprocess.run([str(ROOT / "deploy" / "backup.sh")], env=env, capture_output=True, text=True,
                                timeout=180)
        assert result.returncode == 0, result.stdout + result.stderr

        kept = sorted(p.name for p in backups.iterdir())
        assert len(kept) == 14
        assert kept[:-1] == older[3:], "the 13 newest older ones stay beside today's"
        assert "removed leadform-2026-01-01T024500Z.bak" in result.stdout and "copied off the machine" in result.stdout
        today = backups / kept[-1]

        # The machine is lost: only the off-site copy is left.
        offsite = tmp_path / "from-offsite"
        subprocess.run(["restic", "restore", "latest", "--target", str(offsite)], env=env, check=True,
                       capture_output=True, timeout=60)
        copy = offsite / backups.relative_to("/") / today.name
        assert copy.read_bytes() == today.read_bytes()
        assert len(list(copy.parent.glob("leadform-*.bak"))) == 14

        assert client.post("/api/checklists/teams", data={"name": "Later", "email": "later@example.be",
                                                          "privacy": "y"}).status_code == 303
        app.extensions["leadform.engine"].dispose()   # stop the app
        if engine == "sqlite":  # README: delete -wal and -shm, copy the backup over the database
            database = tmp_path / "live" / "leadform.sqlite3"
            for suffix in ("-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            shutil.copy(copy, database)
        else:  # README: pg_restore --clean --if-exists --no-owner -d URL FILE, over the live database
            libpq = url.replace("postgresql+psycopg://", "postgresql://")
            restore = subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "-d", libpq, str(copy)],
                                     capture_output=True, text=True, timeout=120)
            assert restore.returncode == 0, restore.stderr
        restored = make_app(WTF_CSRF_ENABLED=False, DATABASE_URL=url)
        exported = restored.test_cli_runner().invoke(args=["leads", "export"]).output
        assert sorted(re.findall(r"[\w-]+@example\.be", exported)) == [
            f"bewaard-{i}@example.be" for i in range(3)], "the backup's leads, not the one that came later"
        assert restored.test_client().post("/api/checklists/teams", data={
            "name": "Na", "email": "na@example.be", "privacy": "y"}).status_code == 303
        restored.extensions["leadform.engine"].dispose()
