"""The lead-capture app: checklist requests, downloads, contact messages and consent proof.

`create_app()` is the factory (Flask tutorial style): defaults from `leadform.config`, then
LEADFORM_* environment variables, then `test_config`. The servers start the outbox's thread
(`leadform.wsgi`); CLI commands and tests get an app without it.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask

from leadform.config import NEW_KEY, ROOT, ConfigError, Defaults, check_production, is_one

DEV_SECRET_FILE = "dev-secret"  # noqa: S105 (a file name)
LOG_FORMAT = "%(asctime)sZ %(levelname)s %(name)s %(message)s"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = _configured(test_config)
    _init_logging(app)

    from leadform import checklists, cli, consent, contact, db, errors, outbox, scorecards, teams, web

    db.init_app(app)
    if app.config["MIGRATE_ON_START"]:
        db.upgrade(app.extensions["leadform.engine"])
    web.init_app(app)
    for blueprint in (checklists.bp, contact.bp, consent.bp, consent.analytics_bp, scorecards.bp, teams.bp):
        app.register_blueprint(blueprint)
    checklists.ensure_pdfs(app)
    errors.init_app(app)
    outbox.init_app(app)
    cli.init_app(app)
    return app


def check_config() -> None:
    """Refuse what create_app refuses, from the environment alone, without opening the database. gunicorn's
    master calls it before it starts workers (deploy/gunicorn.conf.py), so a wrong production setting stops
    the server with its one line: several workers refusing at once made gunicorn print a traceback."""
    _configured(None)


def _configured(test_config: dict[str, Any] | None) -> Flask:
    instance = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("LEADFORM_INSTANCE_PATH")
    app = Flask(__name__, instance_path=str(instance or ROOT / "instance"), instance_relative_config=True)
    app.config.from_object(Defaults)
    app.config.from_prefixed_env("LEADFORM")
    if test_config:
        app.config.update(test_config)
    _finish_config(app)
    return app


def _finish_config(app: Flask) -> None:
    """Derive paths from the instance folder and refuse to start without a real secret."""
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    instance.chmod(0o700)  # the database, mail files and the development secret: the app's user only
    dev_file = instance / DEV_SECRET_FILE
    if not app.config.get("SECRET_KEY") and not app.config.get("PUBLIC_HTTPS"):
        if not app.config.get("TESTING") and not is_one(app.config.get("DEV_SECRET")):
            raise ConfigError(
                "LEADFORM_SECRET_KEY is not set: set it to a random key, e.g. the output of "
                f"`{NEW_KEY}`, or LEADFORM_DEV_SECRET=1 for a development key kept in {dev_file}."
            )
        app.config["SECRET_KEY"] = _dev_secret(dev_file)
    check_production(app.config, dev_file.read_text().strip() if dev_file.is_file() else None)
    app.config["DATABASE_URL"] = app.config["DATABASE_URL"] or f"sqlite:///{instance / 'leadform.sqlite3'}"
    app.config["PDF_DIR"] = app.config["PDF_DIR"] or str(instance / "pdfs")
    app.config["MAIL_DIR"] = app.config["MAIL_DIR"] or str(instance / "mail")
    if app.config["PUBLIC_HTTPS"]:
        app.config.update(SESSION_COOKIE_NAME="__Host-session", SESSION_COOKIE_SECURE=True,
                          SESSION_COOKIE_PATH="/", PREFERRED_URL_SCHEME="https")
    else:
        app.config.setdefault("SESSION_COOKIE_NAME", "session")


def _dev_secret(path: Path) -> str:
    """`make run` and tests only: a random secret kept in the instance folder. An empty file is an error
    (a key of nothing would sign every session and link), not a reason to make a new one silently."""
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    value = path.read_text().strip()
    if not value:
        raise ConfigError(f"{path} is empty: delete it (a new development key is made) or set LEADFORM_SECRET_KEY.")
    return value


class UTCFormatter(logging.Formatter):
    converter = time.gmtime


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the event (pytest and gunicorn replace it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


def _init_logging(app: Flask) -> None:
    """One line per event, UTC, English; call sites log ids and event names, never a visitor's data."""
    logger = logging.getLogger("leadform")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(UTCFormatter(LOG_FORMAT, "%Y-%m-%dT%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))
