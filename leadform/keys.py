"""The app's signing keys: SECRET_KEY signs; SECRET_KEY_FALLBACKS, older keys, are still accepted.

Why: a download link is valid for 14 days (site_config `link_valid_days`). Rotating the secret
without keeping the old one as a fallback would break every link already mailed, and every session
cookie. Flask reads the same setting for its session cookie (leadform/session_cookie.py).
"""

from __future__ import annotations

from flask import Flask, current_app


def signing_keys(app: Flask | None = None) -> tuple[str | bytes, ...]:
    """The keys in itsdangerous' order: the fallbacks first, the current key last (it signs)."""
    config = (app or current_app).config
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or ()
    if isinstance(fallbacks, str | bytes):  # one key given as a plain string
        fallbacks = (fallbacks,)
    return (*fallbacks, config["SECRET_KEY"])
