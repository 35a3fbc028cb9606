"""Form posts take what a browser's form sends, and nothing else reaches the form classes.

Flask-WTF also reads a JSON body and uploaded files into a form's fields, so a string field
could receive a number, an object or a file and break the view (a 500). The site's forms send
urlencoded or multipart text fields only: another body type is refused (415), and file parts,
which no form has, are ignored like any other unknown field.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, request
from werkzeug.datastructures import ImmutableMultiDict

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def form_post(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for a view that reads an HTML form."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.mimetype and request.mimetype not in FORM_TYPES:
            abort(415)
        if request.mimetype == "multipart/form-data" and request.files:
            request.files = ImmutableMultiDict()
        return view(*args, **kwargs)

    return wrapper
