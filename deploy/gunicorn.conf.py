"""gunicorn settings for the app behind nginx: `gunicorn -c deploy/gunicorn.conf.py`.

Only the app (/api/, /download/) runs here; nginx serves site/ (deploy/nginx.conf). The app reads
its own configuration from LEADFORM_* variables: at least LEADFORM_SECRET_KEY,
LEADFORM_PUBLIC_HTTPS=true (__Host- Secure cookies, HSTS) and, with more than one worker,
LEADFORM_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 so that all workers count together, and
LEADFORM_PROXY_FIX_X_FOR=1 so that per-IP limits see the visitor's address nginx forwards, not nginx.
GUNICORN_BIND and GUNICORN_WORKERS override the two settings a deployment usually changes.
"""

import os

wsgi_app = "leadform.wsgi:app"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8001")   # loopback only: nginx is the front door
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "gthread"
# One request thread per worker (plus the outbox thread): with more, a thread inside a database
# transaction waits for the GIL while its siblings run, and every writer queues behind it.
# bench/endpoints.py, 2 workers: consent POST 885-1183 req/s (p99 26-31 ms) with 1 thread,
# 726-842 req/s (p99 41-50 ms) with 4; checklist POST 840-941 req/s with 1 thread, 786-893 with 2.
# Add workers, not threads, for more throughput.
threads = 1
preload_app = False          # each worker opens its own database connections after the fork
timeout = 30                 # the visitor's request never waits on the mail server (outbox)
graceful_timeout = 20
keepalive = 5                # nginx keeps upstream connections open (upstream keepalive)
max_requests = 2000          # recycle workers now and then
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
loglevel = "warning"
proc_name = "coach-leadform"


def post_worker_init(worker) -> None:
    """Start each worker's outbox thread now, so mail queued before a restart leaves without
    waiting for the first visitor (cron's `outbox send` is the safety net)."""
    app = worker.wsgi
    app.extensions["leadform.outbox"].kick()
