"""gunicorn settings: production behind Caddy or nginx (`gunicorn -c deploy/gunicorn.conf.py`), and `make run`.

Behind Caddy (deploy/Caddyfile, systemd/coach-leadform.service) and under `make run` it serves the site
and the app on one origin: `leadform.wsgi:with_site()`. Behind nginx (deploy/nginx.conf) only the app
(/api/, /download/, /team/) runs here, the default below, and nginx serves site/. The app reads
its own configuration from LEADFORM_* variables: at least LEADFORM_SECRET_KEY,
LEADFORM_PUBLIC_HTTPS=true (__Host- Secure cookies, HSTS) and, with more than one worker,
LEADFORM_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 so that all workers count together, and
LEADFORM_PROXY_FIX_X_FOR=1 so that per-IP limits see the visitor's address nginx forwards, not nginx.
GUNICORN_BIND, GUNICORN_WORKERS and GUNICORN_THREADS override what a deployment usually changes.
"""

import os

wsgi_app = "leadform.wsgi:application()"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8001")   # loopback only: nginx is the front door
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))  # per worker, beside its outbox thread
preload_app = False          # each worker opens its own database connections after the fork
timeout = 30                 # the visitor's request never waits on the mail server (outbox)
graceful_timeout = 20
keepalive = 5                # nginx keeps upstream connections open (upstream keepalive)
# Recycle workers now and then, but only when others answer meanwhile: a lone worker (`make run`) that
# recycles leaves every visitor waiting while its replacement boots (11 s on a loaded machine in
# tests/test_publish.py, at about the 2000th request).
max_requests = 2000 if workers > 1 else 0
max_requests_jitter = 200
limit_request_line = 8190
limit_request_fields = 100

# nginx on the same host sets X-Forwarded-Proto; trust it from there only.
forwarded_allow_ips = "127.0.0.1,::1"
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# The app logs its own events (one line each, no personal data). gunicorn's access log would
# record client addresses, so it stays off; errors go to stderr for the service manager.
accesslog = None
errorlog = "-"
loglevel = "error"          # gunicorn warns about a malformed request with the client's IP address
proc_name = "coach-leadform"


def on_starting(server) -> None:
    """Check the app's settings once in the master, before any worker starts: a refused production setting
    ends the server with the app's one line (leadform.check_config), not a worker crash loop or traceback."""
    from leadform import check_config

    check_config()
