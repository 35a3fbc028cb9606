"""The app's signing keys and the serializers that sign with them.

SECRET_KEY signs; SECRET_KEY_FALLBACKS, older keys, are still accepted. Why: a download link is
valid for 14 days (site_config `link_valid_days`). Rotating the secret without keeping the old one
as a fallback would break every link already mailed, and every session cookie.

Every signed value (the session cookie, download links, the contact form's start time) comes from
`serializer`: one per kind, salt and keys, made once, signing with hashlib's SHA-1. That is
itsdangerous' default digest, so the tokens are the same, but its default is a Python function,
which sends `hmac` down its pure-Python path; and Flask made a new serializer for every request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from flask import Flask, current_app
from itsdangerous import Serializer

S = TypeVar("S", bound=Serializer)


def signing_keys(app: Flask | None = None) -> tuple[str | bytes, ...]:
    """The keys in itsdangerous' order: the fallbacks first, the current key last (it signs)."""
    config = (app or current_app).config
    fallbacks = config.get("SECRET_KEY_FALLBACKS") or ()
    if isinstance(fallbacks, str | bytes):  # one key given as a plain string
        fallbacks = (fallbacks,)
    return (*fallbacks, config["SECRET_KEY"])


@lru_cache(maxsize=32)
def serializer(kind: type[S], salt: str | bytes, keys: tuple[str | bytes, ...], payload: Any = None,
               key_derivation: str = "django-concat", digest: Callable[..., Any] = hashlib.sha1) -> S:
    """A `kind` serializer for `keys` (see signing_keys) and `salt`; `payload` is its JSON module
    (None: itsdangerous' default). It holds nothing else, and each dumps or loads makes its own
    signer, so one is shared by every request and thread."""
    return kind(list(keys), salt=salt, serializer=payload,
                signer_kwargs={"key_derivation": key_derivation, "digest_method": digest})
