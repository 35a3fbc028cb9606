"""Defaults for the lead-capture app; every key can be set as LEADFORM_<KEY> in the environment.

The embedded default needs nothing installed: SQLite and mail files in the
instance folder. Production sets at least LEADFORM_SECRET_KEY, the mail backend,
LEADFORM_PUBLIC_HTTPS=true and, on PostgreSQL,
LEADFORM_DATABASE_URL=postgresql+psycopg://user@host/dbname.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(SystemExit):
    """A setting that must not reach production. A SystemExit, so that every entry point (gunicorn's
    worker via leadform.wsgi, the `flask` commands) stops with its one line, not a traceback."""


class Defaults:
    SECRET_KEY: str | None = None          # required outside testing; with PUBLIC_HTTPS at least 32 bytes
    DEV_SECRET = None                      # only 1 uses a random key kept in <instance>/dev-secret (make run)
    ALLOW_FILE_MAIL = False                # 1 allows MAIL_BACKEND=file with PUBLIC_HTTPS (mail kept in files)
    SECRET_KEY_FALLBACKS: list[str] | None = None  # older keys, still accepted after a rotation
    DATABASE_URL: str | None = None        # default: sqlite:///<instance>/leadform.sqlite3
    MIGRATE_ON_START = True                # else run `flask --app leadform db upgrade` as the deploy step
    SITE_DIR = str(ROOT / "site")          # the built static site, served by `make run`
    PDF_DIR: str | None = None             # default: <instance>/pdfs
    MAIL_BACKEND = "file"                  # "file" (writes .eml to <instance>/mail) or "smtp"
    MAIL_DIR: str | None = None
    MAIL_FROM = "no-reply@voorbeeld-coaching.be"
    SMTP_HOST = "localhost"
    SMTP_PORT = 25
    SMTP_SECURITY = "none"                 # "none", "starttls" or "tls"
    SMTP_USER: str | None = None
    SMTP_PASSWORD: str | None = None
    SMTP_TIMEOUT = 10.0
    OUTBOX_MAX_ATTEMPTS = 8
    OUTBOX_BACKOFF_SECONDS = 30            # doubles each attempt, capped at one hour
    OUTBOX_LEASE_SECONDS = 300             # a 'sending' row older than this was abandoned by a crash
    OUTBOX_THREAD = True                   # deliver after each commit in a background thread
    OUTBOX_POLL_SECONDS = 15               # the thread also looks for due mail (retries) this often
    NOTIFY_COACH = True                    # mail the coach on each newly confirmed lead
    CONTACT_CONFIRMATION = True            # mail the visitor a short confirmation
    COACH_EMAIL: str | None = None         # default: coach.email from site_config
    PUBLIC_HTTPS = False                   # Secure + __Host- cookies, HSTS; production rules (check_production)
    # Rate-limit counters. memory:// is per process: right for `make run` (one process) only. Under
    # gunicorn with several workers set LEADFORM_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0 so
    # every worker counts in one place. If Redis goes away, each worker falls back to its own memory
    # (limits then hold per worker) rather than refusing visitors; it switches back when Redis returns.
    RATELIMIT_STORAGE_URI = "memory://"
    LIMIT_KEY_PREFIX = "leadform"          # one Redis may serve several sites (or test runs)
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    RATELIMIT_SWALLOW_ERRORS = True        # a limiter fault never costs a visitor their submission
    RATELIMIT_ENABLED = True
    # Behind nginx every request comes from 127.0.0.1: with PROXY_FIX_X_FOR=1 the visitor's address is
    # read from the X-Forwarded-For header that one proxy sets (deploy/proxy.conf). Leave 0 when nothing
    # sits in front (`make run`), or anyone could pick their own address and dodge the per-IP limits.
    PROXY_FIX_X_FOR = 0
    MAX_CONTENT_LENGTH = 64 * 1024
    WTF_CSRF_TIME_LIMIT = 6 * 3600
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SITE_BUILD = "dev"                     # set by the deployment to the site build's id


def signing_keys(config: Mapping[str, Any]) -> list[str | bytes]:
    """The app's keys in itsdangerous' order: older keys (SECRET_KEY_FALLBACKS) first, the current one
    last (it signs). Download links mailed before a key rotation keep working for their 14 days."""
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or []
    if isinstance(fallbacks, str | bytes):
        fallbacks = [fallbacks]
    return [*fallbacks, config["SECRET_KEY"]]


MIN_SECRET_BYTES = 32
NEW_KEY = "python3 -c 'import secrets; print(secrets.token_hex(32))'"


def is_one(value: object) -> bool:
    """Only 1 (LEADFORM_X=1) switches a development or opt-in setting on: not `no`, `0`, `true` or empty."""
    return value is not True and str(value).strip() == "1"


def check_production(config: Mapping[str, Any], dev_secret: str | None) -> None:
    """With PUBLIC_HTTPS (a public site) refuse what would quietly go wrong: a guessable or development
    key, and mail written to files that no visitor ever gets. One plain line says what to set."""
    if not config.get("PUBLIC_HTTPS"):
        return
    key = config.get("SECRET_KEY")
    if not key:
        raise ConfigError(f"LEADFORM_PUBLIC_HTTPS=true needs LEADFORM_SECRET_KEY: set it to a random key of at "
                          f"least {MIN_SECRET_BYTES} bytes, e.g. the output of `{NEW_KEY}` (the development "
                          "secret is refused in production).")
    if len(str(key).encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"LEADFORM_SECRET_KEY is shorter than {MIN_SECRET_BYTES} bytes: set it to a random key, "
                          f"e.g. the output of `{NEW_KEY}`.")
    if dev_secret is not None and str(key) == dev_secret:
        raise ConfigError("LEADFORM_SECRET_KEY is the development secret (instance/dev-secret): set it to a new "
                          f"random key, e.g. the output of `{NEW_KEY}`.")
    if config.get("MAIL_BACKEND") == "file" and not is_one(config.get("ALLOW_FILE_MAIL")):
        raise ConfigError("LEADFORM_MAIL_BACKEND is 'file' with LEADFORM_PUBLIC_HTTPS=true, so visitors would get "
                          "no mail: set LEADFORM_MAIL_BACKEND=smtp and LEADFORM_SMTP_HOST (_PORT, _SECURITY, _USER, "
                          "_PASSWORD), or LEADFORM_ALLOW_FILE_MAIL=1 to keep mail in files on purpose.")
