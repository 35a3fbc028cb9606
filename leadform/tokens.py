"""GET /api/csrf: the token a static page's form needs, fetched by forms.js.

The site is static, so its forms cannot carry a per-visitor token; this small
endpoint hands one out (and the signed start time the contact form's spam check
uses) on the same origin.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_wtf.csrf import generate_csrf

from leadform.timing import issue_started

bp = Blueprint("tokens", __name__)


@bp.get("/api/csrf")
def csrf_token():
    response = jsonify(csrf_token=generate_csrf(), started=issue_started())
    response.headers["Cache-Control"] = "no-store"
    return response
