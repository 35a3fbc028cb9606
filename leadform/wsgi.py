"""The WSGI entry point for production: `gunicorn -w 4 -b 127.0.0.1:8001 leadform.wsgi:app`.

Only the app (the routes under /api/ and /download/); the static site is served
by the web server in front. Configuration comes from LEADFORM_* environment
variables (at least LEADFORM_SECRET_KEY). Load it without `--preload`: each
worker then opens its own database connections after the fork.
"""

from __future__ import annotations

from leadform import create_app

app = create_app()
