"""A signed 'form shown at' time: bots that submit faster than a person can are ignored."""

from __future__ import annotations

import time

from itsdangerous import BadSignature, URLSafeSerializer

from leadform import keys


def _serializer() -> URLSafeSerializer:
    return keys.serializer(URLSafeSerializer, "form-started", keys.signing_keys())


def issue_started(backdate: float = 0) -> str:
    return _serializer().dumps(time.time() - backdate)


def seconds_since(token: str | None) -> float | None:
    """Seconds since the token was issued, or None when it is missing or forged."""
    if not token:
        return None
    try:
        started = float(_serializer().loads(token))
    except (BadSignature, TypeError, ValueError):
        return None
    return time.time() - started
