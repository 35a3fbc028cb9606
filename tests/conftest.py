"""Shared fixtures: a built site, a static server for it, and a real Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # deploy/local.py runs the production config in tests
    sys.path.insert(0, str(ROOT))
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The database every app in this run uses: SQLite files in tmp_path by default; with
# LEADFORM_TEST_DATABASE_URL=postgresql+psycopg://… the whole suite runs on that PostgreSQL database,
# emptied before each test. Read here, before _no_leadform_env clears LEADFORM_* for the tests.
TEST_DATABASE_URL = os.environ.get("LEADFORM_TEST_DATABASE_URL") or None
ENGINE = "postgresql" if TEST_DATABASE_URL else "sqlite"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def mkdocs_build(config: Path, site_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run `mkdocs build --strict` the way the coach does, without network."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(config), "-d", str(site_dir)],
        cwd=config.parent, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real site, built once per test session with --strict."""
    out = tmp_path_factory.mktemp("built") / "site"
    result = mkdocs_build(ROOT / "mkdocs.yml", out)
    assert result.returncode == 0, result.stderr
    # as `make build` does: .gz copies of the text files, which `make run` serves to browsers that ask
    subprocess.run([sys.executable, "-m", "whitenoise.compress", "--quiet", "--no-brotli", str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def site_pages(site_dir: Path) -> dict[str, str]:
    """Every built HTML page, keyed by its path below the site root."""
    return {p.relative_to(site_dir).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(site_dir.rglob("*.html"))}


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the site sources to break on purpose; the Python package stays shared."""
    dest = tmp_path / "project"
    dest.mkdir()
    shutil.copytree(ROOT / "docs", dest / "docs")
    shutil.copy(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    (dest / "site_config").symlink_to(ROOT / "site_config")
    return dest


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def static_server(site_dir: Path) -> Iterator[str]:
    """The built site over HTTP on a free loopback port; stops with the session."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    """The system Chromium under Playwright. Missing Chromium fails, never skips."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: apt-get install -y chromium"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# -- the lead-capture app --------------------------------------------------------------------------------

def pytest_report_header() -> str:
    return f"database engine under test: {ENGINE}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test about SQLite by nature (its files, PRAGMAs, journal) says so with
    `@pytest.mark.sqlite_only(reason=...)`; on PostgreSQL it is skipped with that reason."""
    if ENGINE == "sqlite":
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker:
            item.add_marker(pytest.mark.skip(reason=f"SQLite by nature: {marker.kwargs['reason']}"))


@pytest.fixture(scope="session")
def _postgresql_schema() -> None:
    """The PostgreSQL database under test, at the migrations' head, from nothing."""
    from sqlalchemy import create_engine

    from leadform import db

    engine = create_engine(TEST_DATABASE_URL)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    db.upgrade(engine)
    engine.dispose()


@pytest.fixture(autouse=True)
def _empty_database(request: pytest.FixtureRequest) -> None:
    """On PostgreSQL every test starts from empty tables, as it does from a new SQLite file."""
    if ENGINE == "sqlite" or request.node.get_closest_marker("sqlite_only"):
        return
    from sqlalchemy import create_engine

    from leadform.models import Base

    request.getfixturevalue("_postgresql_schema")
    engine = create_engine(TEST_DATABASE_URL)
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    engine.dispose()


@pytest.fixture(autouse=True)
def _no_leadform_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's LEADFORM_* settings."""
    for name in list(os.environ):
        if name.startswith("LEADFORM_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pdf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from leadform.pdf import build_pdfs

    folder = tmp_path_factory.mktemp("pdfs")
    build_pdfs(folder)
    return folder


# What an app with LEADFORM_PUBLIC_HTTPS=true needs to start (leadform.config.check_production): a real
# key, and mail kept in files on purpose.
PUBLIC_HTTPS = {"PUBLIC_HTTPS": True, "SECRET_KEY": "test-" + "0" * 40, "ALLOW_FILE_MAIL": 1}


def app_config(tmp_path: Path, pdf_dir: Path, **overrides: object) -> dict:
    """An app's config for a test; without a SITE_DIR it gets a stand-in for a built site's published
    pages and banner hash (tests/support/published.py)."""
    from support.published import stub_site

    return {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "PDF_DIR": str(pdf_dir),
            "SITE_DIR": str(stub_site(tmp_path / "stub-site")),
            "OUTBOX_THREAD": False, "PUBLIC_URL": "http://site.test/", "RATELIMIT_ENABLED": False,
            "MAIL_BACKEND": "file", "DATABASE_URL": TEST_DATABASE_URL, **overrides}


def server_env(tmp_path: Path) -> dict[str, str]:
    """LEADFORM_* for an app in another process (gunicorn, a CLI command): this run's database."""
    env = {"LEADFORM_INSTANCE_PATH": str(tmp_path / "instance")}
    if TEST_DATABASE_URL:
        env["LEADFORM_DATABASE_URL"] = TEST_DATABASE_URL
    return env


@pytest.fixture
def make_app(tmp_path: Path, pdf_dir: Path):
    """Build an app on this run's database (a fresh SQLite file in tmp_path, or the emptied PostgreSQL
    database); keyword arguments override config. Its connections close after the test."""
    from leadform import create_app

    apps = []

    def factory(**overrides: object):
        apps.append(create_app(app_config(tmp_path, pdf_dir, **overrides)))
        return apps[-1]

    yield factory
    from leadform import outbox

    for app in apps:
        outbox.stop(app)
        app.extensions["leadform.engine"].dispose()


@pytest.fixture
def app(make_app):
    return make_app(WTF_CSRF_ENABLED=False)


@pytest.fixture
def client(app):
    return app.test_client()


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


@pytest.fixture
def redis_prefix():
    """A Redis key prefix of its own for this test; fails (never skips) when Redis is not there."""
    import uuid

    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}). The rate-limit tests need it: "
                    f"apt-get install -y redis-server, then {START_REDIS} (.ci/run does both).")
    prefix = f"leadform-test-{uuid.uuid4().hex}"
    yield prefix
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.delete(key)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class SMTPRecorder:
    """aiosmtpd handler that records messages, or answers with a chosen failure."""

    def __init__(self) -> None:
        self.messages: list = []
        self.reply: str | None = None   # e.g. "451 4.3.0 try later" or "550 5.1.1 no such user"
        self.refuse: dict[str, str] = {}  # recipient -> reply, for one address only
        self.delay = 0.0
        self.quit_delay = 0.0  # a server slow to say goodbye, after it accepted the mail
        self.connections: list[tuple] = []  # the client's address of each SMTP session that sent mail
        self.per_connection: int | None = None  # a server that takes so many mails per connection
        self.refused_mail = 0  # MAIL FROM answered 421 because of per_connection

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if self.per_connection is not None and self.connections.count(session.peer) >= self.per_connection:
            self.refused_mail += 1
            return "421 4.7.0 Too many messages on this connection, reconnect"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope) -> str:
        import asyncio

        await asyncio.sleep(self.quit_delay)
        return "221 Bye"

    async def handle_DATA(self, server, session, envelope) -> str:
        import asyncio
        from email import message_from_bytes
        from email.policy import default

        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reply:
            return self.reply
        for rcpt in envelope.rcpt_tos:
            if rcpt in self.refuse:
                return self.refuse[rcpt]
        message = message_from_bytes(envelope.content, policy=default)
        self.messages.append((envelope.rcpt_tos, message))
        self.connections.append(session.peer)
        return "250 OK"


@pytest.fixture
def smtp_server():
    """A real SMTP server on a free loopback port, stopped after the test."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    recorder = SMTPRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    recorder.port = port
    recorder.controller = controller
    yield recorder
    controller.stop()


def smtp_config(port: int) -> dict:
    return {"MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_TIMEOUT": 2.0,
            "OUTBOX_BACKOFF_SECONDS": 0}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The site and the app on one origin, as `make run` serves them."""

    def __init__(self, url: str, app, server) -> None:
        self.url, self.app, self.server = url, app, server


@pytest.fixture
def live_config(request: pytest.FixtureRequest) -> dict:
    """Config overrides for live_server: `@pytest.mark.live_config(KEY=value)`, or override this fixture."""
    marker = request.node.get_closest_marker("live_config")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def live_server(site_dir: Path, tmp_path: Path, pdf_dir: Path, live_config: dict):
    """The site and the app on one origin as `make run` serves them (leadform.wsgi.one_origin), under a
    threaded server in this process on a free loopback port, stopped after the test."""
    from werkzeug.serving import make_server

    from leadform.wsgi import application, one_origin

    overrides = {"OUTBOX_THREAD": True, **live_config}
    port = free_port()
    app = application(app_config(tmp_path, pdf_dir, SITE_DIR=str(site_dir),
                                 PUBLIC_URL=f"http://127.0.0.1:{port}/", **overrides))
    server = make_server("127.0.0.1", port, one_origin(app, site_dir), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{port}", app, server)
    server.shutdown()
    from leadform import outbox

    outbox.stop(app)  # on a shared PostgreSQL database it would deliver the next tests' mail
    app.extensions["leadform.engine"].dispose()
