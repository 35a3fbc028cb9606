"""The session cookie (it holds the CSRF token only): Flask's signed cookie, with a cheaper signer.

Flask makes a new serializer for every request, with itsdangerous' slow default SHA-1; this one is
made once per key set (leadform/keys.py). The cookie is the same either way (HMAC-SHA1 under the
same keys), so sessions signed before and after this change keep working.
"""

from __future__ import annotations

import hashlib

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from leadform import keys


class SessionCookie(SecureCookieSessionInterface):
    digest_method = staticmethod(hashlib.sha1)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        return keys.serializer(URLSafeTimedSerializer, self.salt, keys.signing_keys(app), self.serializer,
                               self.key_derivation, self.digest_method)
