"""The lead-capture app: checklist requests, downloads, contact messages and consent proof.

`create_app()` is the factory (Flask tutorial style): defaults from
`leadform.config`, then LEADFORM_* environment variables, then `test_config`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask

from leadform.config import ROOT, Defaults

log = logging.getLogger("leadform")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    instance = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("LEADFORM_INSTANCE_PATH")
    app = Flask(__name__, instance_path=str(instance or ROOT / "instance"), instance_relative_config=True)
    app.config.from_object(Defaults)
    app.config.from_prefixed_env("LEADFORM")
    if test_config:
        app.config.update(test_config)
    _finish_config(app)

    from leadform import cli, db, errors, extensions, logs, migrate, outbox, pdf_store, security
    from leadform.analytics import bp as analytics_bp
    from leadform.checklists import bp as checklists_bp
    from leadform.consent import bp as consent_bp
    from leadform.contact import bp as contact_bp
    from leadform.health import bp as health_bp
    from leadform.session_cookie import SessionCookie
    from leadform.tokens import bp as tokens_bp

    app.session_interface = SessionCookie()
    logs.init_app(app)
    db.init_app(app)
    if app.config.get("MIGRATE_ON_START", True):
        migrate.upgrade(app.extensions["leadform.engine"])
    extensions.init_app(app)
    security.init_app(app)
    for blueprint in (health_bp, tokens_bp, checklists_bp, contact_bp, consent_bp, analytics_bp):
        app.register_blueprint(blueprint)
    errors.init_app(app)
    outbox.init_app(app)
    pdf_store.init_app(app)
    cli.init_app(app)
    return app


def _finish_config(app: Flask) -> None:
    """Derive paths from the instance folder and refuse to start without a real secret."""
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config.get("SECRET_KEY"):
        if not app.config.get("TESTING") and not app.config.get("DEV_SECRET"):
            raise RuntimeError(
                "LEADFORM_SECRET_KEY is not set. Generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'` and set it in the environment."
            )
        app.config["SECRET_KEY"] = _dev_secret(instance)
    app.config["DATABASE_URL"] = app.config["DATABASE_URL"] or f"sqlite:///{instance / 'leadform.sqlite3'}"
    app.config["PDF_DIR"] = app.config["PDF_DIR"] or str(instance / "pdfs")
    app.config["MAIL_DIR"] = app.config["MAIL_DIR"] or str(instance / "mail")
    if app.config["PUBLIC_HTTPS"]:
        app.config.update(SESSION_COOKIE_NAME="__Host-session", SESSION_COOKIE_SECURE=True,
                          SESSION_COOKIE_PATH="/", PREFERRED_URL_SCHEME="https")
    else:
        app.config.setdefault("SESSION_COOKIE_NAME", "session")


def _dev_secret(instance: Path) -> str:
    """`make run` and tests only: a random secret kept in the instance folder."""
    import secrets

    path = instance / "dev-secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
