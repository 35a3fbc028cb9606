"""`make run`: the built site and the lead-capture app on one origin, in one process.

For a newcomer and a small deployment. The static part compresses text files
(gzip, cached in memory) and gives fingerprinted assets a one-year cache
lifetime. Production puts nginx or Caddy in front for site/ and runs the app
under gunicorn (see README, "Production").
"""

from __future__ import annotations

import argparse
import gzip
import logging
import mimetypes
import os
import re
from functools import lru_cache
from pathlib import Path

from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

from leadform.security import APP_POLICY, response_headers
from site_config import csp

log = logging.getLogger("leadform.serve")
ROOT = Path(__file__).resolve().parent.parent
APP_PREFIXES = ("/api/", "/download/")
COMPRESSIBLE = {"text/html", "text/css", "text/javascript", "application/javascript", "application/json",
                "image/svg+xml", "application/xml", "text/xml", "text/plain", "application/rss+xml"}
FINGERPRINTED = re.compile(r"\.[0-9a-f]{8,}\.min\.(js|css)$|/assets/(javascripts|stylesheets)/.*\.[0-9a-f]{8}\.")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("application/json", ".json")
mimetypes.add_type("image/svg+xml", ".svg")


class StaticSite:
    """Serves site/ like a web server would: index.html for folders, 404.html, gzip, caching.

    Every response carries the security headers of leadform.security, with the Content-Security-Policy
    the build wrote into site/.csp.json (re-read when a rebuild changes it). Dotfiles, that policy
    file among them, are never served. `https=True` (the app's PUBLIC_HTTPS) adds HSTS.
    """

    def __init__(self, site_dir: Path, headers: dict[str, str] | None = None, https: bool = False) -> None:
        self.site_dir = site_dir.resolve()
        self.headers = headers or {}
        self.https = https

    def _policy(self) -> str:
        """The build's policy; without one (a site built without our hooks) no inline script runs."""
        try:
            mtime = (self.site_dir / csp.POLICY_FILE).stat().st_mtime
        except OSError:
            mtime = None
        return self._read_policy(mtime)

    @lru_cache(maxsize=4)  # noqa: B019 - keyed by the policy file's mtime, so a rebuild is picked up
    def _read_policy(self, mtime: float | None) -> str:
        try:
            return csp.read_policy(self.site_dir)
        except csp.CSPError as exc:
            log.warning("no build policy, inline scripts blocked: %s", exc)
            return APP_POLICY

    def _security_headers(self) -> dict[str, str]:
        return response_headers(self.https, self._policy())

    def _inside(self, path: str) -> Path | None:
        if any(part.startswith(".") for part in path.split("/")):
            return None  # dotfiles and dot-folders (.csp.json, .git, ...) are not part of the site
        target = (self.site_dir / path.lstrip("/")).resolve()
        return target if target.is_relative_to(self.site_dir) else None

    def _resolve(self, path: str) -> Path | None:
        target = self._inside(path)
        if target is not None and target.is_dir():
            target = target / "index.html"
        return target if target is not None and target.is_file() else None

    @lru_cache(maxsize=2048)  # noqa: B019 - one instance per process, files change only on rebuild
    def _load(self, file: Path, mtime: float) -> tuple[bytes, bytes | None, str]:
        body = file.read_bytes()
        mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        packed = gzip.compress(body, 6, mtime=0) if mime in COMPRESSIBLE and len(body) > 512 else None
        return body, packed, mime

    def __call__(self, environ, start_response):
        request = Request(environ)
        security = self._security_headers()
        if request.method not in ("GET", "HEAD"):
            return Response("Method not allowed", 405, {"Allow": "GET, HEAD", **security})(environ, start_response)
        path = request.path
        folder = self._inside(path)
        if not path.endswith("/") and folder is not None and folder.is_dir():
            return Response(status=301, headers={"Location": path + "/", **security})(environ, start_response)
        file = self._resolve(path)
        status = 200
        if file is None:
            file, status = self.site_dir / "404.html", 404
        body, packed, mime = self._load(file, file.stat().st_mtime)
        headers = {"Content-Type": f"{mime}; charset=utf-8" if mime.startswith("text/") or "json" in mime
                   or "xml" in mime or "javascript" in mime else mime, "Vary": "Accept-Encoding", **security,
                   **self.headers}
        if status == 200 and FINGERPRINTED.search(path):
            headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            headers["Cache-Control"] = "no-cache"
        if packed is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
            body, headers["Content-Encoding"] = packed, "gzip"
        response = Response(body if request.method == "GET" else b"", status, headers)
        response.content_length = len(body)
        return response(environ, start_response)


class OneOrigin:
    """Requests under /api/ and /download/ go to the Flask app, everything else to the static site."""

    def __init__(self, app, site) -> None:
        self.app, self.site = app, site

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(APP_PREFIXES):
            return self.app(environ, start_response)
        return self.site(environ, start_response)


def make_app(test_config: dict | None = None):
    from leadform import create_app

    app = create_app(test_config)
    return OneOrigin(app, StaticSite(Path(app.config["SITE_DIR"]), https=app.config["PUBLIC_HTTPS"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    args = parser.parse_args()
    os.environ.setdefault("LEADFORM_PUBLIC_URL", f"http://{args.host}:{args.port}/")
    print(f"Site en formulieren: http://{args.host}:{args.port}/  (mail: instance/mail/*.eml)", flush=True)
    run_simple(args.host, args.port, make_app(), threaded=True)


if __name__ == "__main__":
    main()
