"""`make run`: the built site and the lead-capture app on one origin, one process.

For a newcomer and a small deployment. Production puts a web server in front
for site/ and runs the app under gunicorn (see README, "Production").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from werkzeug.exceptions import NotFound
from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.serving import run_simple

ROOT = Path(__file__).resolve().parent.parent


def make_app(site_dir: Path = ROOT / "site"):
    """One WSGI app: files from site/ (with index.html for folders), 404 otherwise."""
    return SharedDataMiddleware(NotFound(), {"/": str(site_dir)}, fallback_mimetype="text/plain")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    print(f"Site en formulieren: http://{args.host}:{args.port}/")
    run_simple(args.host, args.port, make_app(), threaded=True)


if __name__ == "__main__":
    main()
