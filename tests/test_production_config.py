"""A public site (LEADFORM_PUBLIC_HTTPS=true) refuses to run wrong, and /api/health tells the truth.

The settings come from the environment, as on the server, so LEADFORM_*'s own parsing is under test.
A refusal is one plain English line naming what to set, from create_app, from gunicorn (the real
entry point: it must stop, not restart the worker forever) and from the coach's `flask` commands.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from sqlalchemy import create_engine
from support.postgres import ADMIN_URL, throwaway_database

from deploy.local import free_port
from leadform import create_app, outbox
from leadform.config import ConfigError

GOOD_KEY = "k" * 32


def start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pdf_dir: Path, **env: str):
    """create_app() with these LEADFORM_* variables, as a server starts it (not in testing mode)."""
    monkeypatch.setenv("LEADFORM_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("LEADFORM_PDF_DIR", str(pdf_dir))
    monkeypatch.setenv("LEADFORM_OUTBOX_THREAD", "false")
    for name, value in env.items():
        monkeypatch.setenv(f"LEADFORM_{name}", value)
    return create_app()


def refusal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pdf_dir: Path, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        start(monkeypatch, tmp_path, pdf_dir, **env)
    line = str(caught.value.code)
    assert "\n" not in line
    return line


@pytest.mark.parametrize("env, names", [
    ({"DEV_SECRET": "1"}, "LEADFORM_SECRET_KEY"),                       # the development key is not for production
    ({}, "LEADFORM_SECRET_KEY"),
    ({"SECRET_KEY": "k" * 31}, "shorter than 32 bytes"),
    ({"SECRET_KEY": GOOD_KEY}, "LEADFORM_ALLOW_FILE_MAIL=1"),            # mail backend 'file' by default
    ({"SECRET_KEY": GOOD_KEY, "ALLOW_FILE_MAIL": "no"}, "LEADFORM_MAIL_BACKEND=smtp"),
])
def test_a_public_site_refuses_a_weak_key_or_mail_in_files(monkeypatch, tmp_path: Path, pdf_dir: Path, env: dict,
                                                           names: str) -> None:
    assert names in refusal(monkeypatch, tmp_path, pdf_dir, PUBLIC_HTTPS="true", **env)


def test_a_public_site_refuses_the_development_key_given_as_its_key(monkeypatch, tmp_path: Path,
                                                                    pdf_dir: Path) -> None:
    start(monkeypatch, tmp_path, pdf_dir, DEV_SECRET="1")  # `make run` once: instance/dev-secret exists
    dev_key = (tmp_path / "instance" / "dev-secret").read_text().strip()
    monkeypatch.delenv("LEADFORM_DEV_SECRET")
    line = refusal(monkeypatch, tmp_path, pdf_dir, PUBLIC_HTTPS="true", SECRET_KEY=dev_key, MAIL_BACKEND="smtp")
    assert "development secret" in line


@pytest.mark.parametrize("env", [{"MAIL_BACKEND": "smtp"}, {"ALLOW_FILE_MAIL": "1"}])
def test_a_public_site_starts_with_a_real_key_and_real_mail_or_files_allowed(monkeypatch, tmp_path: Path,
                                                                            pdf_dir: Path, env: dict) -> None:
    app = start(monkeypatch, tmp_path, pdf_dir, PUBLIC_HTTPS="true", SECRET_KEY=os.urandom(32).hex(), **env)
    assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("value", ["no", "0", "", "true", "yes"])
def test_only_1_turns_the_development_key_on(monkeypatch, tmp_path: Path, pdf_dir: Path, value: str) -> None:
    assert "LEADFORM_SECRET_KEY is not set" in refusal(monkeypatch, tmp_path, pdf_dir, DEV_SECRET=value)
    assert not (tmp_path / "instance" / "dev-secret").exists()


def test_the_development_key_with_1_and_an_empty_key_file_is_an_error(monkeypatch, tmp_path: Path,
                                                                      pdf_dir: Path) -> None:
    app = start(monkeypatch, tmp_path, pdf_dir, DEV_SECRET="1")
    key_file = tmp_path / "instance" / "dev-secret"
    assert app.config["SECRET_KEY"] == key_file.read_text().strip() and len(app.config["SECRET_KEY"]) == 64
    key_file.write_text("\n")
    assert str(key_file) in refusal(monkeypatch, tmp_path, pdf_dir, DEV_SECRET="1")
    assert key_file.read_text() == "\n"  # not replaced silently


def server_env(tmp_path: Path, pdf_dir: Path, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEADFORM_")}
    return {**base, "LEADFORM_INSTANCE_PATH": str(tmp_path / "instance"), "LEADFORM_PDF_DIR": str(pdf_dir),
            "LEADFORM_OUTBOX_THREAD": "false", **{f"LEADFORM_{k}": v for k, v in env.items()}}


def test_gunicorn_stops_with_one_line_instead_of_restarting(tmp_path: Path, pdf_dir: Path) -> None:
    env = server_env(tmp_path, pdf_dir, PUBLIC_HTTPS="true", DEV_SECRET="1")
    env |= {"GUNICORN_BIND": f"127.0.0.1:{free_port()}", "GUNICORN_WORKERS": "2"}
    gunicorn = Path(sys.executable).parent / "gunicorn"
    result = subprocess.run([str(gunicorn), "-c", "deploy/gunicorn.conf.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if "LEADFORM_" in line]
    assert len(ours) == 1, result.stderr  # one line, from the master, before any worker starts
    assert "LEADFORM_SECRET_KEY" in ours[0]
    assert "Traceback" not in result.stderr


def test_the_coachs_commands_stop_with_one_line(tmp_path: Path, pdf_dir: Path) -> None:
    env = server_env(tmp_path, pdf_dir, PUBLIC_HTTPS="true", SECRET_KEY=GOOD_KEY)
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "leadform", "leads", "list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert "LEADFORM_ALLOW_FILE_MAIL=1" in result.stderr and "Traceback" not in result.stderr


# -- /api/health -------------------------------------------------------------------------------------------

def health(app) -> tuple[int, dict]:
    response = app.test_client().get("/api/health")
    return response.status_code, response.get_json()


def test_health_answers_ok_with_the_database_and_redis_there(monkeypatch, tmp_path: Path, pdf_dir: Path) -> None:
    app = start(monkeypatch, tmp_path, pdf_dir, DEV_SECRET="1",
                RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0")
    assert health(app) == (200, {"status": "ok", "database": "ok", "redis": "ok"})


def test_health_is_503_when_redis_is_gone(monkeypatch, tmp_path: Path, pdf_dir: Path, caplog) -> None:
    app = start(monkeypatch, tmp_path, pdf_dir, DEV_SECRET="1",
                RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0")
    assert health(app) == (503, {"status": "unavailable", "database": "ok", "redis": "unreachable"})
    assert "health check failed part=redis" in caplog.text


def test_health_is_503_when_the_postgresql_database_is_dropped(monkeypatch, tmp_path: Path, pdf_dir: Path,
                                                                caplog) -> None:
    with throwaway_database("leadform_health") as url:
        app = start(monkeypatch, tmp_path, pdf_dir, DEV_SECRET="1", DATABASE_URL=url)
        try:
            assert health(app) == (200, {"status": "ok", "database": "ok"})
            admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                name = url.rsplit("/", 1)[1]
                connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            admin.dispose()
            assert health(app) == (503, {"status": "unavailable", "database": "unreachable"})
            assert "health check failed part=database error=OperationalError" in caplog.text
            assert url not in caplog.text
        finally:
            outbox.stop(app)
            app.extensions["leadform.engine"].dispose()


def test_health_is_503_when_postgresql_does_not_listen(monkeypatch, tmp_path: Path, pdf_dir: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/leadform"
    app = start(monkeypatch, tmp_path, pdf_dir, DEV_SECRET="1", DATABASE_URL=url, MIGRATE_ON_START="false")
    assert health(app) == (503, {"status": "unavailable", "database": "unreachable"})
