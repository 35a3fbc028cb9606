"""Flask-WTF CSRF protection and Flask-Limiter, configured from site_config.

Rate limits are counted per visitor IP and, on the forms that carry one, per e-mail address.
Both keys are HMACs under the app secret, so neither the limiter's storage (Redis) nor its log
lines ever hold an address or an IP. Several workers must share one storage
(LEADFORM_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0); the embedded default `memory://`
only suits `make run`'s single process.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from site_config import load_settings

csrf = CSRFProtect()


def _pseudonym(kind: str, value: str) -> str:
    """A stable, secret-keyed stand-in for a personal value (an IP or an e-mail address), under the app's
    LIMIT_KEY_PREFIX (read per request: Flask-Limiter keeps its own key prefix from the first app only)."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{current_app.config.get('LIMIT_KEY_PREFIX') or 'leadform'}/{kind}:{digest}"


def ip_key() -> str:
    """The visitor's IP, pseudonymised (behind a proxy, PROXY_FIX_X_FOR makes it the visitor's, not nginx's)."""
    return _pseudonym("ip", get_remote_address() or "unknown")


def submitted_email() -> str:
    """The form's e-mail address normalised as the forms do (strip, lower), or '' if there is none."""
    try:
        value = request.form.get("email", "")
    except HTTPException:  # too large or malformed: the view answers that, not the limiter
        return ""
    return value.strip().lower()


def email_key() -> str:
    return _pseudonym("email", submitted_email())


def no_email() -> bool:
    return not submitted_email()


def accepted(response: Response) -> bool:
    """Only a submission that went through counts against an address, not a typo shown again."""
    return response.status_code < 400


limiter = Limiter(ip_key, default_limits=[], headers_enabled=False, strategy="moving-window")


def per_ip(setting: str, scope: str) -> Callable:
    """Decorator: the limit named `setting` in site_config's `limits`, per IP, counted on every request."""
    return limiter.limit(lambda: getattr(load_settings().limits, setting), scope=scope)


def per_email(scope: str) -> Callable:
    """Decorator: at most `mails_per_address_per_day` accepted submissions per address per day."""
    return limiter.limit(lambda: f"{load_settings().limits.mails_per_address_per_day} per day",
                         key_func=email_key, scope=scope, exempt_when=no_email, deduct_when=accepted)


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    proxies = int(app.config.get("PROXY_FIX_X_FOR") or 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    csrf.init_app(app)
    limiter.init_app(app)
