"""Consent proof: POST /api/consent appends one record per cookie choice (GDPR art. 7(1)).

The banner (site_config/overrides/partials/consent.html + consent.js) posts every choice here.
A record holds a random record id, a random subject id (first-party cookie `consent_subject`,
set by this response, never before a choice), the event, the UTC time, the choice per
category, the button, the policy version, the hash of the banner text the visitor saw, the
expiry and the site build (the app's SITE_BUILD, set by the deployment). No IP address, no
user agent, no URL. Records are never updated; erasure and retention purge delete whole rows.

CSRF: the blueprint is exempt from Flask-WTF's token, because the banner sits on static pages
and posts JSON. That cannot be forged from another site: a browser sends a cross-origin POST
with `Content-Type: application/json` only after a CORS preflight, which this app never allows,
and a plain HTML form cannot set that type. On top, a request whose Origin header names another
host, or whose Sec-Fetch-Site is not same-origin, is refused (403).

This is the site's most frequent POST, so it does the least: one strict parse, one INSERT, committed
without waiting for the disk (leadform/append_log.py: on disk within a second, through an app crash
at once).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from leadform import db
from leadform.append_log import AppendLog
from leadform.extensions import csrf, limiter
from leadform.models import ConsentRecord, new_id, utcnow
from site_config import Consent, load_settings

bp = Blueprint("consent", __name__, cli_group="consent")
csrf.exempt(bp)
log = logging.getLogger("leadform.consent")

SUBJECT_COOKIE = "consent_subject"
MAX_BODY = 1024  # bytes; a real choice is about 200
FIELDS = frozenset({"event", "choices", "button", "policy_version", "banner_hash"})
EVENTS = ("given", "refused", "withdrawn", "updated")
BUTTONS = ("accept_all", "reject_all", "save")
RANDOM_ID = re.compile(r"[0-9a-f]{32}")
BANNER_HASH = re.compile(r"[0-9a-f]{16,64}")
RECORDS = AppendLog(ConsentRecord.__table__)  # one INSERT, no ORM, no fsync per request: see append_log


class InvalidChoice(ValueError):
    """The payload is not a choice the banner can send."""


@dataclass(frozen=True)
class Choice:
    event: str
    choices: dict[str, bool]
    button: str
    policy_version: int
    banner_hash: str


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise InvalidChoice("duplicate key")
    return dict(pairs)


def _reject_constant(name: str) -> None:
    raise InvalidChoice(f"constant {name}")


def parse_choice(body: bytes, consent: Consent) -> Choice:
    """The choice in a request body, or InvalidChoice: exactly the banner's fields, values and rules."""
    try:
        data = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidChoice(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(data, dict) or set(data) != FIELDS:
        raise InvalidChoice("fields")
    version, event, button, banner_hash = (data["policy_version"], data["event"], data["button"],
                                           data["banner_hash"])
    if type(version) is not int or version != consent.policy_version:
        raise InvalidChoice("policy version")
    if event not in EVENTS or button not in BUTTONS:
        raise InvalidChoice("event or button")
    if not isinstance(banner_hash, str) or not BANNER_HASH.fullmatch(banner_hash):
        raise InvalidChoice("banner hash")
    choices = data["choices"]
    if not isinstance(choices, dict) or set(choices) != set(consent.category_ids) \
            or any(type(value) is not bool for value in choices.values()):
        raise InvalidChoice("categories")
    if not all(choices[c.id] for c in consent.categories if c.required):
        raise InvalidChoice("a required category refused")
    allowed = [choices[cid] for cid in consent.optional_ids]
    consistent = {
        "accept_all": all(allowed), "reject_all": not any(allowed), "save": True,
    }[button] and {
        "given": any(allowed), "updated": any(allowed), "refused": not any(allowed),
        "withdrawn": not all(allowed),
    }[event]
    if not consistent:
        raise InvalidChoice("event, button and choices disagree")
    return Choice(event, choices, button, version, banner_hash)


def example_payload() -> dict[str, Any]:
    """A valid 'Alles accepteren' as the banner sends it (tests and bench/endpoints.py)."""
    consent = load_settings().consent
    return {"event": "given", "choices": {cid: True for cid in consent.category_ids}, "button": "accept_all",
            "policy_version": consent.policy_version, "banner_hash": "0123456789abcdef"}


def require_same_origin() -> None:
    """403 unless the request comes from a page of this site (see the module docstring)."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site != "same-origin":
        abort(403)
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        abort(403)


def read_body(mimetype: str, max_bytes: int) -> bytes:
    """The body of a same-origin request of one content type: 403 from another site, 415 for another
    type, 400 when it is larger than `max_bytes` or has no declared length."""
    require_same_origin()
    if request.mimetype != mimetype:
        abort(415)
    length = request.content_length
    if length is None or length > max_bytes:
        abort(400)
    return request.get_data(cache=False)


@bp.post("/api/consent")
@limiter.limit(lambda: load_settings().limits.consent_per_ip, scope="consent")
def record() -> tuple[Response, int]:
    consent = load_settings().consent
    try:
        choice = parse_choice(read_body("application/json", MAX_BODY), consent)
    except InvalidChoice as exc:
        log.info("consent payload rejected reason=%s", exc)
        abort(400)
    subject = request.cookies.get(SUBJECT_COOKIE, "")
    if not RANDOM_ID.fullmatch(subject):
        subject = new_id()
    now = utcnow()
    row = {"id": new_id(), "subject_id": subject, "event": choice.event, "created_at": now,
           "choices": choice.choices, "button": choice.button, "policy_version": choice.policy_version,
           "banner_hash": choice.banner_hash, "expires_at": now + dt.timedelta(days=consent.max_age_days),
           "site_build": str(current_app.config["SITE_BUILD"])[:64], "email": None}
    try:
        RECORDS.append(db.engine(durable=False), current_app.extensions["leadform.wal_sync"], row)
    except SQLAlchemyError as exc:
        log.error("consent not stored error=%s", type(exc).__name__)
        abort(503)
    log.info("consent recorded event=%s button=%s", choice.event, choice.button)
    response = jsonify(id=row["id"], expires_at=_iso(row["expires_at"]))
    response.set_cookie(SUBJECT_COOKIE, subject, max_age=consent.max_age_days * 86400, path="/",
                        secure=bool(current_app.config["PUBLIC_HTTPS"]), httponly=True, samesite="Lax")
    return response, 201


def _iso(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds") + "Z"


def record_dict(r: ConsentRecord) -> dict[str, Any]:
    return {"id": r.id, "subject_id": r.subject_id, "event": r.event, "time_utc": _iso(r.created_at),
            "choices": r.choices, "button": r.button, "policy_version": r.policy_version,
            "banner_hash": r.banner_hash, "expires_utc": _iso(r.expires_at), "site_build": r.site_build,
            "email": r.email}


# -- commands for the coach: `flask --app leadform consent stats|proof` ------------------------------------------

def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


@bp.cli.command("stats")
@click.option("--weeks", default=12, show_default=True, type=click.IntRange(1, 520),
              help="How many weeks, this one included.")
def stats(weeks: int) -> None:
    """Cookie choices per week (UTC, Monday first): accept all, reject all, custom (saved settings)."""
    first = week_start(utcnow().date()) - dt.timedelta(weeks=weeks - 1)
    counts = {first + dt.timedelta(weeks=i): dict.fromkeys(BUTTONS, 0) for i in range(weeks)}
    with db.transaction() as s:
        rows = s.execute(select(ConsentRecord.created_at, ConsentRecord.button)
                         .where(ConsentRecord.created_at >= dt.datetime.combine(first, dt.time())))
        for created_at, button in rows:
            week = counts.get(week_start(created_at.date()))
            if week is not None and button in week:
                week[button] += 1
    click.echo(f"{'week':<10} {'starts':<10} {'accept':>7} {'reject':>7} {'custom':>7} {'total':>7} {'accept%':>8}")
    for start, c in counts.items():
        total = sum(c.values())
        share = f"{100 * c['accept_all'] / total:.0f}%" if total else "-"
        year, week, _ = start.isocalendar()
        click.echo(f"{year}-W{week:02d}   {start:%Y-%m-%d} {c['accept_all']:>7} {c['reject_all']:>7} "
                   f"{c['save']:>7} {total:>7} {share:>8}")


@bp.cli.command("proof")
@click.argument("subject_id")
def proof(subject_id: str) -> None:
    """Every recorded choice of one visitor (the value of their consent_subject cookie), as JSON."""
    subject_id = subject_id.strip().lower()
    if not RANDOM_ID.fullmatch(subject_id):
        raise click.BadParameter("a subject id is 32 hexadecimal characters", param_hint="SUBJECT_ID")
    with db.transaction() as s:
        records = s.scalars(select(ConsentRecord).where(ConsentRecord.subject_id == subject_id)
                            .order_by(ConsentRecord.created_at, ConsentRecord.id)).all()
        rows = [record_dict(r) for r in records]
    if not rows:
        click.echo(f"no consent records for subject {subject_id}", err=True)
        sys.exit(1)
    consent = load_settings().consent
    last = records[-1]
    in_force = last.expires_at > utcnow() and last.policy_version == consent.policy_version
    click.echo(json.dumps({
        "subject_id": subject_id, "exported_utc": _iso(utcnow()),
        "current_policy_version": consent.policy_version,
        "in_force": {"choices": last.choices, "since_utc": _iso(last.created_at)} if in_force else None,
        "records": rows,
    }, ensure_ascii=False, indent=2))
