"""`make deploy` (deploy/deploy.sh) end to end, over a real sshd on a loopback port with a throwaway key:
the "server" is a folder, served as the server recipe serves it: Caddy (deploy/Caddyfile, its internal
CA) in front of gunicorn's `leadform.wsgi:with_site()` on the folder's `site` link. A new post goes
live from a new release, with that release's CSP, without restarting the app; a change in leadform/
migrates the database first, then restarts the app (a harmless command that records the database's
schema version at the moment of the restart)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import ROOT
from support.https import fetch

from deploy.local import caddy_and_app, sshd
from site_config import csp
from site_config.new_post import create

# What the coach's repository holds (tests/ and bench/ play no part in a deploy).
REPOSITORY = ["docs", "leadform", "site_config", "deploy", "mkdocs.yml", "pyproject.toml", "Makefile"]


def checkout(dest: Path) -> Path:
    """A copy of the coach's repository, as CI checks it out."""
    dest.mkdir()
    for name in REPOSITORY:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, dest / name)
    return dest


def deploy(local: Path, ssh, server: Path, env_file: Path, build: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEPLOY_HOST": ssh.host, "DEPLOY_SSH": ssh.ssh, "DEPLOY_DIR": str(server),
           "DEPLOY_ENV_FILE": str(env_file), "PYTHON": sys.executable, "DEPLOY_BUILD": "1" if build else "0",
           "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(["deploy/deploy.sh"], cwd=local, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def get(front, path: str) -> tuple[int, str, str | None]:
    """Status, page and Content-Security-Policy of a page through Caddy."""
    response, body = fetch(front, path)
    return response.status, body.decode(), response.headers["Content-Security-Policy"]


def test_deploy_publishes_a_new_post_and_restarts_the_app_only_when_its_code_changed(tmp_path: Path,
                                                                                      pdf_dir: Path) -> None:
    local = checkout(tmp_path / "repository")
    server = tmp_path / "server"
    server.mkdir()
    database = tmp_path / "data" / "leadform.sqlite3"
    restarts = tmp_path / "restarts.log"
    restart = tmp_path / "restart.py"
    restart.write_text(  # what a restart sees: the schema version the app will start on
        "import sqlite3, sys\n"
        f"version = sqlite3.connect({str(database)!r}).execute('SELECT version_num FROM alembic_version').fetchone()\n"
        f"open({str(restarts)!r}, 'a').write(f'restart at schema {{version[0]}}\\n')\n")
    env_file = tmp_path / "etc" / "leadform.env"
    env_file.parent.mkdir()
    env_file.write_text(
        "# the server's settings: read by the service, the coach's commands and deploy/release.sh\n"
        "LEADFORM_SECRET_KEY=deploy-test-secret-deploy-test-secret\n"
        f"LEADFORM_DATABASE_URL=sqlite:///{database}\n"
        f"LEADFORM_INSTANCE_PATH={server / 'instance'}\n"
        "LEADFORM_MIGRATE_ON_START=false\n"
        f"COACH_PYTHON={sys.executable}\n"
        f"COACH_RESTART='{sys.executable} {restart}'\n")
    database.parent.mkdir()

    front_env = {"LEADFORM_SECRET_KEY": "front-" + "0" * 40, "LEADFORM_PDF_DIR": str(pdf_dir),
                 "LEADFORM_OUTBOX_THREAD": "false", "LEADFORM_ALLOW_FILE_MAIL": "1"}
    with caddy_and_app(server / "site", tmp_path / "front", front_env) as front, sshd(tmp_path / "ssh") as ssh:
        # 1. The first deploy: everything is new, so the database is created, then the app starts.
        first = deploy(local, ssh, server, env_file)
        assert "app changed: migrating" in first.stdout
        head = sqlite3.connect(database).execute("SELECT version_num FROM alembic_version").fetchone()[0]
        assert restarts.read_text() == f"restart at schema {head}\n", "migrated before the restart"
        assert (server / "instance" / "pdfs").is_dir() and list((server / "instance" / "pdfs").glob("*.pdf"))
        assert get(front, "/")[0] == 200
        first_release = (server / "site").resolve()

        # 2. A new post: a new release goes live, the app is not restarted.
        post = create("Feedback die blijft hangen", posts=local / "docs" / "blog" / "posts",
                      now=dt.datetime(2024, 3, 1, 9, 0))
        post.write_text(post.read_text(encoding="utf-8").replace("draft: true", "draft: false"), encoding="utf-8")
        assert get(front, "/blog/feedback-die-blijft-hangen/")[0] == 404
        second = deploy(local, ssh, server, env_file)
        assert "app unchanged: no restart" in second.stdout
        status, page, policy = get(front, "/blog/feedback-die-blijft-hangen/")
        assert status == 200 and "Feedback die blijft hangen" in page
        assert policy == csp.read_policy(server / "site"), "the new release's own CSP"
        assert (server / "site").resolve() != first_release
        assert (server / "site").resolve().parent == (server / "releases").resolve()
        assert restarts.read_text().count("restart") == 1, "a post alone never restarts the app"
        bundle = next((server / "site" / "assets" / "javascripts").glob("bundle.*.min.js"))
        earlier = first_release / bundle.relative_to(server / "site")
        assert bundle.stat().st_ino == earlier.stat().st_ino, "unchanged files are hard-linked, not sent again"
        assert (server / "docs" / "blog" / "posts" / post.name).is_file(), "the sources follow"

        # 3. A change in leadform/ with a migration: migrations first, then one restart.
        (server / "instance" / "keep.txt").write_text("the server's own files survive a deploy")
        (local / "leadform" / "migrations" / "versions" / "0999_deploy_test.py").write_text(
            '"""a table only this test adds"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
            f"revision = '0999'\ndown_revision = {head!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade() -> None:\n"
            "    op.create_table('deploy_test', sa.Column('id', sa.Integer, primary_key=True))\n"
            "\n\ndef downgrade() -> None:\n    op.drop_table('deploy_test')\n")
        with (local / "leadform" / "__init__.py").open("a") as module:
            module.write("\n# a change in the app\n")
        third = deploy(local, ssh, server, env_file, build=False)
        assert third.stdout.index("migrating") < third.stdout.index("restarting")
        assert restarts.read_text().splitlines() == [f"restart at schema {head}", "restart at schema 0999"]
        assert (server / "leadform" / "__init__.py").read_text().endswith("# a change in the app\n")
        assert (server / "instance" / "keep.txt").exists()
        assert get(front, "/blog/feedback-die-blijft-hangen/")[0] == 200
