"""The session cookie (it holds the CSRF token only): Flask's signed cookie, with a cheaper signer.

Flask makes a new serializer for every request, and itsdangerous' default SHA-1 is a Python function
that sends `hmac` down its pure-Python path. The cookie is the same either way (HMAC-SHA1 under the
same keys), so sessions signed before and after this change keep working.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from leadform.keys import signing_keys


class SessionCookie(SecureCookieSessionInterface):
    digest_method = staticmethod(hashlib.sha1)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        return _serializer(type(self), signing_keys(app))


@lru_cache(maxsize=8)
def _serializer(cookie: type[SessionCookie], keys: tuple[str | bytes, ...]) -> URLSafeTimedSerializer:
    """Flask's serializer for these keys (the current one last, which signs) and the class's salt and
    signer, made once: it holds nothing but those, and each dumps or loads makes its own signer."""
    return URLSafeTimedSerializer(list(keys), salt=cookie.salt, serializer=cookie.serializer,
                                  signer_kwargs={"key_derivation": cookie.key_derivation,
                                                 "digest_method": cookie.digest_method})
