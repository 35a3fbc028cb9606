"""The WSGI entry points, for gunicorn (deploy/gunicorn.conf.py).

- `application()`: the app alone (/api/, /download/, /team/), for production behind nginx, which serves site/.
- `with_site()`: the app and the built site on one origin, as `make run` serves them: WhiteNoise
  serves site/ (folders to their index.html, a year's cache for fingerprinted assets, the .gz files
  `make build` writes), with the same security headers as the app and the build's Content-Security-
  Policy; paths it does not know get the site's own 404 page.

Both start the outbox's delivery thread in each worker (gunicorn imports this after the fork).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask
from whitenoise import WhiteNoise

from leadform import create_app, outbox
from leadform.config import ConfigError
from leadform.web import APP_POLICY, response_headers
from site_config import csp

APP_PREFIXES = ("/api/", "/download/", "/team/")
APP_LOAD_ERROR = 4  # gunicorn.arbiter.Arbiter.APP_LOAD_ERROR
FINGERPRINTED = re.compile(r"\.[0-9a-f]{8,}\.min\.(js|css)$|/assets/(javascripts|stylesheets)/.*\.[0-9a-f]{8}\.")


def application(test_config: dict[str, Any] | None = None) -> Flask:
    try:
        app = create_app(test_config)
    except ConfigError as exc:
        # One line, then exit 4: gunicorn's "App failed to load" stops the master instead of
        # restarting the worker forever.
        print(exc.code, file=sys.stderr, flush=True)
        raise SystemExit(APP_LOAD_ERROR) from None
    outbox.start(app)
    return app


def with_site(test_config: dict[str, Any] | None = None) -> Callable[..., Iterable[bytes]]:
    app = application(test_config)
    return one_origin(app, Path(app.config["SITE_DIR"]), https=bool(app.config["PUBLIC_HTTPS"]))


def one_origin(app: Flask, site_dir: Path, https: bool = False) -> Callable[..., Iterable[bytes]]:
    """Requests under /api/, /download/ and /team/ go to the app, everything else to the static site.

    `site_dir` may be a symlink to a release (site_config/publish.py swaps it in one rename): each
    request resolves it once and is served wholly from that release, its files, 404 page and policy,
    even when the link moves on mid-request. Files are looked up per request (WhiteNoise's
    autorefresh), so a folder rebuilt in place is served without a restart too."""
    releases = Releases(site_dir)

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(APP_PREFIXES):
            return app(environ, start_response)
        release = releases.current()

        def with_security_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, *response_headers(https, release.policy.current()).items()],
                                  exc_info)

        if "/." in path:  # dotfiles (the build's .csp.json) are not part of the site
            return release.missing(environ, with_security_headers)
        if path.endswith(".gz"):  # sitemap.xml.gz: WhiteNoise keeps .gz files for Content-Encoding only
            return release.gzip_file(environ, with_security_headers)
        return release.files(environ, with_security_headers)

    return dispatch


class Release:
    """One built folder as WhiteNoise serves it: its files, its 404 page, its policy."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.policy = SitePolicy(folder)
        self.files = WhiteNoise(self.missing, root=str(folder), autorefresh=True, index_file=True,
                                allow_all_origins=False, add_headers_function=self.no_cache_unless_fingerprinted,
                                immutable_file_test=lambda path, url: bool(FINGERPRINTED.search(url)))

    def missing(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        page = self.folder / "404.html"
        body = page.read_bytes() if page.is_file() else b"Not found"
        start_response("404 Not Found", [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache"),
                                         ("Content-Length", str(len(body)))])
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]

    def gzip_file(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """A .gz file of the site as what it is, a gzip file (the build's sitemap.xml.gz)."""
        file = (self.folder / environ["PATH_INFO"].lstrip("/")).resolve()
        if not file.is_relative_to(self.folder.resolve()) or not file.is_file():
            return self.missing(environ, start_response)
        body = file.read_bytes()
        start_response("200 OK", [("Content-Type", "application/gzip"), ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-cache")])
        return [b"" if environ["REQUEST_METHOD"] == "HEAD" else body]

    @staticmethod
    def no_cache_unless_fingerprinted(headers: Any, path: str, url: str) -> None:
        if not FINGERPRINTED.search(url):
            headers["Cache-Control"] = "no-cache"


class Releases:
    """The release `site_dir` points to now (its real path), remade only when the link moved."""

    def __init__(self, site_dir: Path) -> None:
        self.site_dir = site_dir
        self.latest: Release | None = None

    def current(self) -> Release:
        folder = Path(os.path.realpath(self.site_dir))
        latest = self.latest
        if latest is None or latest.folder != folder:
            latest = self.latest = Release(folder)  # two threads may both make one: harmless
        return latest


class SitePolicy:
    """The build's Content-Security-Policy (site/.csp.json), read again when a rebuild changes it.
    Without one (a site built without our hooks) no inline script runs."""

    def __init__(self, site_dir: Path) -> None:
        self.file = site_dir / csp.POLICY_FILE
        self.site_dir = site_dir
        self.seen: tuple[float | None, str] = (-1.0, APP_POLICY)

    def current(self) -> str:
        try:
            mtime: float | None = self.file.stat().st_mtime
        except OSError:
            mtime = None
        if mtime != self.seen[0]:
            try:
                value = csp.read_policy(self.site_dir)
            except csp.CSPError:
                value = APP_POLICY
            self.seen = (mtime, value)
        return self.seen[1]
