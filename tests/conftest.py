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


def app_config(tmp_path: Path, pdf_dir: Path, **overrides: object) -> dict:
    return {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "PDF_DIR": str(pdf_dir),
            "OUTBOX_THREAD": False, "PUBLIC_URL": "http://site.test/", "RATELIMIT_ENABLED": False,
            "MAIL_BACKEND": "file", **overrides}


@pytest.fixture
def make_app(tmp_path: Path, pdf_dir: Path):
    """Build an app on a fresh SQLite file in tmp_path; keyword arguments override config."""
    from leadform import create_app

    def factory(**overrides: object):
        return create_app(app_config(tmp_path, pdf_dir, **overrides))

    return factory


@pytest.fixture
def app(make_app):
    return make_app(WTF_CSRF_ENABLED=False)


@pytest.fixture
def client(app):
    return app.test_client()


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
