"""Personal download links: signed and time-limited, only a hash of the secret is stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app
from itsdangerous import BadSignature, Serializer, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from leadform import keys
from leadform.models import utcnow
from site_config import load_settings


class LinkExpired(Exception):
    def __init__(self, token: str) -> None:
        super().__init__("download link expired")
        self.token = token


class LinkInvalid(Exception):
    """Tampered with, or made with another secret."""


class LinkSerializer(URLSafeTimedSerializer):
    """URLSafeTimedSerializer without its attempt to zlib-compress the payload. A link's secret is
    random and never compresses (34 bytes of JSON, 39 or more compressed), so the tokens are the
    ones URLSafeTimedSerializer makes, and it reads them all. Setting up zlib for the attempt cost
    127,000 of a checklist request's 3.49 million instructions (bench/instructions.py)."""

    def dump_payload(self, obj: object) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


def _serializer() -> LinkSerializer:
    """Under the app's keys (leadform/keys.py: links mailed before a key rotation keep working)."""
    return keys.serializer(LinkSerializer, "download-link", keys.signing_keys())


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def valid_days() -> int:
    return load_settings().limits.link_valid_days


def new_secret() -> tuple[str, str]:
    """A new link secret and the signed token that carries it in the mail (only its hash is stored)."""
    secret = secrets.token_urlsafe(24)
    return secret, _serializer().dumps(secret)


def expires_at() -> dt.datetime:
    return utcnow() + dt.timedelta(days=valid_days())


def public_url(token: str) -> str:
    base = current_app.config.get("PUBLIC_URL") or load_settings().site.url
    return base.rstrip("/") + "/download/" + token


def secret_from(token: str, *, allow_expired: bool = False) -> str:
    """The secret inside a signed token; raises LinkExpired or LinkInvalid."""
    serializer = _serializer()
    try:
        return serializer.loads(token, max_age=None if allow_expired else valid_days() * 86400)
    except SignatureExpired:
        raise LinkExpired(token) from None
    except BadSignature:
        raise LinkInvalid() from None
