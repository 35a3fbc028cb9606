"""Shared pieces of the benchmarks: timed builds, a gzip-compressing server, the system Chromium,
`make run`'s server (gunicorn + WhiteNoise) on a built site, throwaway SQLite or PostgreSQL databases.

The benchmarks report figures for the issue "Performance"; they never assert.
"""

from __future__ import annotations

import gzip
import mimetypes
import os
import posixpath
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `deploy.local` (the production config on loopback ports) and `leadform`
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "application/xml",
                "image/svg+xml", "application/rss+xml")
GZIP_LEVEL = 6  # what nginx/Apache setups commonly use; the test suite uses gzip's default 9


@dataclass
class Build:
    """One `mkdocs build`: wall time and the peak resident memory of that build process alone."""

    label: str
    seconds: float
    peak_rss_mb: float
    returncode: int
    site_dir: str
    stderr_tail: str = ""
    cpu_seconds: float = 0.0  # user + system: steadier than wall time when other work shares the CPU


def mkdocs_build(config: Path, site_dir: Path, label: str, env: dict[str, str] | None = None,
                 generator: str = "mkdocs", command: list[str] | None = None) -> Build:
    """Time `mkdocs build --strict` and read its peak RSS from os.wait4, per build not per session.

    getrusage(RUSAGE_CHILDREN) keeps the maximum over all children ever waited for, so several
    builds in one process would all report the largest; wait4 gives the figure of this child.
    `generator="properdocs"` builds with ProperDocs instead; `command` times any other command
    (Zensical, the build's own steps) run in the config's folder.
    """
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", **(env or {})}
    command = command or [sys.executable, "-m", generator, "build", "--strict", "-q", "-f", str(config),
                          "-d", str(site_dir)]
    stderr_path = site_dir.parent / f".{site_dir.name}.stderr"
    site_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(stderr_path, "wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-2000:]
    return Build(label=label, seconds=round(seconds, 2), peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
                 returncode=proc.returncode, site_dir=str(site_dir), stderr_tail=tail,
                 cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2))


@dataclass
class Hit:
    path: str
    status: int
    body_bytes: int
    header_bytes: int
    encoding: str


@dataclass
class ServerLog:
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, hit: Hit) -> None:
        with self.lock:
            self.hits.append(hit)

    def take(self) -> list[Hit]:
        with self.lock:
            hits, self.hits = self.hits, []
        return hits


class GzipHandler(SimpleHTTPRequestHandler):
    """Serves a built site like a production server would: gzip for text, sizes logged.

    Python's own handler sends files uncompressed, which would overstate what a visitor downloads.
    """

    protocol_version = "HTTP/1.1"
    log: ServerLog

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def end_headers(self) -> None:
        self._header_bytes = sum(len(chunk) for chunk in getattr(self, "_headers_buffer", [])) + 2
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url_path = urlsplit(self.path).path
        fs_path = Path(self.translate_path(self.path))
        if fs_path.is_dir():
            if not url_path.endswith("/"):
                self._send(301, b"", "text/plain", extra={"Location": url_path + "/"})
                return
            fs_path = fs_path / "index.html"
        if not fs_path.is_file():
            self._send(404, b"Not found", "text/plain")
            return
        ctype = mimetypes.guess_type(posixpath.basename(unquote(url_path)) or "index.html")[0]
        ctype = ctype or ("text/html" if fs_path.name.endswith(".html") else "application/octet-stream")
        self._send(200, fs_path.read_bytes(), ctype)

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        encoding = ""
        if ctype.startswith(COMPRESSIBLE) and "gzip" in self.headers.get("Accept-Encoding", "") and body:
            body, encoding = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0), "gzip"
        self.send_response(status)
        self.send_header("Content-Type", ctype + ("; charset=utf-8" if ctype.startswith("text/") else ""))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        if encoding:
            self.send_header("Content-Encoding", encoding)
            self.send_header("Vary", "Accept-Encoding")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.log.add(Hit(urlsplit(self.path).path, status, len(body), self._header_bytes, encoding))


@contextmanager
def gzip_server(site_dir: Path) -> Iterator[tuple[str, ServerLog]]:
    """The built site on a free 127.0.0.1 port, compressed, with a log of what it sent."""
    log = ServerLog()
    handler = type("Handler", (GzipHandler,), {"log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", log
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium() -> Iterator[Any]:
    """The system Chromium under Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def in_process_app_env(instance: str) -> None:
    """The LEADFORM_* settings of an app a benchmark calls in its own process, on a fresh instance folder:
    no rate limits and no outbox thread, so only the request's own work is measured."""
    os.environ.update(LEADFORM_SECRET_KEY="bench-" + os.urandom(8).hex(), LEADFORM_INSTANCE_PATH=instance,
                      LEADFORM_RATELIMIT_ENABLED="false", LEADFORM_PUBLIC_URL="http://127.0.0.1/",
                      LEADFORM_LOG_LEVEL="WARNING", LEADFORM_OUTBOX_THREAD="false")


def as_dict(obj: Any) -> dict[str, Any]:
    return asdict(obj)


def compress_site(site_dir: Path) -> None:
    """The .gz copies `make build` writes beside each file (`python -m whitenoise.compress --no-brotli`):
    WhiteNoise serves those, and without them `make run`'s server sends text uncompressed."""
    subprocess.run([sys.executable, "-m", "whitenoise.compress", "--quiet", "--no-brotli", str(site_dir)],
                   check=True)


@contextmanager
def make_run_server(site_dir: Path, instance: Path, env: dict[str, str] | None = None,
                    threads: int = 4) -> Iterator[str]:
    """What `make run` serves: gunicorn -c deploy/gunicorn.conf.py 'leadform.wsgi:with_site()', one
    worker with 4 threads, the app and `site_dir` on one origin, on a free loopback port. Yields the
    base URL once /api/health answers; stops the server (and its workers) on exit."""
    from deploy import local

    port = local.free_port()
    instance.mkdir(parents=True, exist_ok=True)
    env = {"LEADFORM_DEV_SECRET": "1", "LEADFORM_SITE_DIR": str(site_dir), "LEADFORM_INSTANCE_PATH": str(instance),
           "LEADFORM_PUBLIC_URL": f"http://127.0.0.1:{port}/", "LEADFORM_LOG_LEVEL": "WARNING",
           "GUNICORN_THREADS": str(threads), **(env or {})}
    url = f"http://127.0.0.1:{port}"
    with local.gunicorn(env, port, workers=1, log=instance / "gunicorn.log", wsgi="leadform.wsgi:with_site()"):
        wait_for_health(url, instance / "gunicorn.log")
        yield url


def wait_for_health(url: str, log: Path | None = None, seconds: float = 60) -> None:
    """gunicorn listens before its workers have imported the app: wait until the app answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url + "/api/health", timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
                raise RuntimeError(f"{url}/api/health did not answer within {seconds:.0f} s\n{tail}") from None
            time.sleep(0.2)


ENGINES = ("sqlite", "postgresql")
# The PostgreSQL server the benchmarks create their throwaway databases on (trust auth on loopback).
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@contextmanager
def throwaway_database(engine: str, instance: Path) -> Iterator[str]:
    """A fresh, empty database for one benchmark run, as a SQLAlchemy URL for LEADFORM_DATABASE_URL:
    SQLite in the instance folder (the app's default place), or a new PostgreSQL database on
    POSTGRES_URL's server, dropped afterwards (the app creates the tables at start, as in production)."""
    if engine == "sqlite":
        yield f"sqlite:///{instance / 'leadform.sqlite3'}"
        return
    if engine != "postgresql":
        raise ValueError(f"unknown engine {engine!r}: {', '.join(ENGINES)}")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = "bench_" + uuid.uuid4().hex[:12]
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def database_label(url: str) -> str:
    """"SQLite" or "PostgreSQL 16.4": the engine a figure was measured on."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        with engine.connect() as conn:
            return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar().split()[0]
    finally:
        engine.dispose()


def count_rows(url: str, sql: str) -> int:
    """One count from the app's database, whichever engine (a short-lived connection)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    finally:
        engine.dispose()
