"""Consent flow: POST /api/consent stores one append-only proof record (filled in by the consent work)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("consent", __name__)
