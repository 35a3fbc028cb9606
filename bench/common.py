"""Shared pieces of the benchmarks: timed builds, a gzip-compressing server, the system Chromium.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
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


def mkdocs_build(config: Path, site_dir: Path, label: str, env: dict[str, str] | None = None) -> Build:
    """Time `mkdocs build --strict` and read its peak RSS from os.wait4, per build not per session.

    getrusage(RUSAGE_CHILDREN) keeps the maximum over all children ever waited for, so several
    builds in one process would all report the largest; wait4 gives the figure of this child.
    """
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", **(env or {})}
    stderr_path = site_dir.parent / f".{site_dir.name}.stderr"
    site_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(stderr_path, "wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(config), "-d", str(site_dir)],
            cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
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
