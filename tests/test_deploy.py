"""`make deploy` (deploy/deploy.sh) end to end, over a real sshd on a loopback port with a throwaway key:
the "server" is a folder, served by a static HTTP server that follows its `site` link, as Caddy's
backend does. A new post goes live from a new release without restarting the app; a change in
leadform/ migrates the database first, then restarts the app (a harmless command that records the
database's schema version at the moment of the restart)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import ROOT

from deploy.local import sshd
from site_config.new_post import create

# What the coach's repository holds (tests/ and bench/ play no part in a deploy).
REPOSITORY = ["docs", "leadform", "site_config", "deploy", "mkdocs.yml", "pyproject.toml", "Makefile"]


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


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


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_deploy_publishes_a_new_post_and_restarts_the_app_only_when_its_code_changed(tmp_path: Path) -> None:
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

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(server / "site")))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}"
    try:
        with sshd(tmp_path / "ssh") as ssh:
            # 1. The first deploy: everything is new, so the database is created, then the app starts.
            first = deploy(local, ssh, server, env_file)
            assert "app changed: migrating" in first.stdout
            head = sqlite3.connect(database).execute("SELECT version_num FROM alembic_version").fetchone()[0]
            assert restarts.read_text() == f"restart at schema {head}\n", "migrated before the restart"
            assert (server / "instance" / "pdfs").is_dir() and list((server / "instance" / "pdfs").glob("*.pdf"))
            assert get(f"{url}/")[0] == 200
            first_release = (server / "site").resolve()

            # 2. A new post: a new release goes live, the app is not restarted.
            post = create("Feedback die blijft hangen", posts=local / "docs" / "blog" / "posts",
                          now=dt.datetime(2024, 3, 1, 9, 0))
            post.write_text(post.read_text(encoding="utf-8").replace("draft: true", "draft: false"), encoding="utf-8")
            assert get(f"{url}/blog/feedback-die-blijft-hangen/")[0] == 404
            second = deploy(local, ssh, server, env_file)
            assert "app unchanged: no restart" in second.stdout
            status, page = get(f"{url}/blog/feedback-die-blijft-hangen/")
            assert status == 200 and "Feedback die blijft hangen" in page
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
            assert get(f"{url}/blog/feedback-die-blijft-hangen/")[0] == 200
    finally:
        httpd.shutdown()
