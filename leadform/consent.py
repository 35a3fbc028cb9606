"""Consent proof and the analytics it allows.

POST /api/consent appends one record per cookie choice (GDPR art. 7(1)).

The banner (site_config/overrides/partials/consent.html + consent.js) posts every choice here.
A record holds a random record id, a random subject id (first-party cookie `consent_subject`,
set by this response, never before a choice), the event, the UTC time, the choice per
category, the button, the policy version, the hash of the banner text the visitor saw, the
expiry and the site build (the app's SITE_BUILD, set by the deployment). No IP address, no
user agent, no URL. Records are never updated; erasure and retention purge delete whole rows.

POST /api/analytics counts one page view per path per day (UTC): docs/assets/javascripts/analytics.js
sends the page's path as text/plain, only after the visitor allowed "analytics" in the banner. Nothing
about the visitor is read or kept: no cookie, no IP address, no user agent, no referrer, no query
string; the table holds (day, path, count) and nothing else.

Both are exempt from Flask-WTF's token and limited to same-origin requests instead
(web.require_same_origin); the worst a forged page view could do is add one to a count.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from dataclasses import dataclass
from typing import Any

import click
from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from leadform import db
from leadform.models import BRUSSELS, ConsentRecord, PageView, belgian_time, new_id, utcnow
from leadform.web import csrf, limiter, read_body
from site_config import Consent, load_settings

bp = Blueprint("consent", __name__, cli_group="consent")
csrf.exempt(bp)
analytics_bp = Blueprint("analytics", __name__, cli_group="analytics")
csrf.exempt(analytics_bp)
log = logging.getLogger("leadform.consent")

SUBJECT_COOKIE = "consent_subject"
MAX_BODY = 1024  # bytes; a real choice is about 200
FIELDS = frozenset({"event", "choices", "button", "policy_version", "banner_hash"})
EVENTS = ("given", "refused", "withdrawn", "updated")
BUTTONS = ("accept_all", "reject_all", "save")
RANDOM_ID = re.compile(r"[0-9a-f]{32}")
BANNER_HASH = re.compile(r"[0-9a-f]{16,64}")


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
    record = ConsentRecord(id=new_id(), subject_id=subject, event=choice.event, created_at=now,
                           choices=choice.choices, button=choice.button, policy_version=choice.policy_version,
                           banner_hash=choice.banner_hash, expires_at=now + dt.timedelta(days=consent.max_age_days),
                           site_build=str(current_app.config["SITE_BUILD"])[:64])
    s = db.session()
    try:
        with s.begin():
            s.add(record)
    except SQLAlchemyError as exc:
        log.error("consent not stored error=%s", type(exc).__name__)
        abort(503)
    log.info("consent recorded event=%s button=%s", choice.event, choice.button)
    response = jsonify(id=record.id, expires_at=_iso(record.expires_at))
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
              help="Hoeveel weken, deze week inbegrepen.")
def stats(weeks: int) -> None:
    """Cookiekeuzes per week (Belgische tijd, maandag eerst): aanvaard = 'Alles accepteren', geweigerd =
    'Alles weigeren', eigen = een keuze via 'Instellingen'."""
    first = week_start(belgian_time(utcnow()).date()) - dt.timedelta(weeks=weeks - 1)
    counts = {first + dt.timedelta(weeks=i): dict.fromkeys(BUTTONS, 0) for i in range(weeks)}
    since = dt.datetime.combine(first, dt.time(), BRUSSELS).astimezone(dt.UTC).replace(tzinfo=None)
    with db.transaction() as s:
        rows = s.execute(select(ConsentRecord.created_at, ConsentRecord.button)
                         .where(ConsentRecord.created_at >= since))
        for created_at, button in rows:
            week = counts.get(week_start(belgian_time(created_at).date()))
            if week is not None and button in week:
                week[button] += 1
    click.echo(f"{'week':<10} {'vanaf':<10} {'aanvaard':>9} {'geweigerd':>10} {'eigen':>6} {'totaal':>7} "
               f"{'%aanvaard':>10}")
    for start, c in counts.items():
        total = sum(c.values())
        share = f"{100 * c['accept_all'] / total:.0f}%" if total else "-"
        year, week, _ = start.isocalendar()
        click.echo(f"{year}-W{week:02d}   {start:%d/%m/%Y} {c['accept_all']:>9} {c['reject_all']:>10} "
                   f"{c['save']:>6} {total:>7} {share:>10}")


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


# -- analytics -------------------------------------------------------------------------------------------

# A site path as location.pathname gives it: percent-encoded, no query, no fragment, at most 200 characters.
PATH = re.compile(r"/[A-Za-z0-9/_.~%-]{0,199}")


def valid_path(path: str) -> bool:
    return bool(PATH.fullmatch(path)) and "//" not in path and "/../" not in path and not path.endswith("/..")


@analytics_bp.post("/api/analytics")
@limiter.limit(lambda: load_settings().limits.consent_per_ip, scope="analytics")
def page_view() -> tuple[str, int]:
    try:
        path = read_body("text/plain", 256).decode("ascii")
    except UnicodeDecodeError:
        abort(400)
    if not valid_path(path):
        abort(400)
    s = db.session()
    try:
        with s.begin():  # the day's first view of a path inserts its row, the others add one
            insert = db.dialect_insert(s.get_bind().dialect.name, PageView).values(day=utcnow().date(), path=path,
                                                                                   count=1)
            s.execute(insert.on_conflict_do_update(index_elements=[PageView.day, PageView.path],
                                                   set_={"count": PageView.count + 1}))
    except SQLAlchemyError as exc:
        log.error("page view not counted error=%s", type(exc).__name__)
        abort(503)
    return "", 204


@analytics_bp.cli.command("pages")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 3660), help="How many days back.")
@click.option("--limit", default=30, show_default=True, type=click.IntRange(1, 10_000), help="How many paths.")
def pages(days: int, limit: int) -> None:
    """Page views per path over the last days, most viewed first."""
    since = utcnow().date() - dt.timedelta(days=days - 1)
    total = func.sum(PageView.count)
    with db.transaction() as s:
        rows = s.execute(select(PageView.path, total).where(PageView.day >= since)
                         .group_by(PageView.path).order_by(total.desc(), PageView.path).limit(limit)).all()
    for path, views in rows:
        click.echo(f"{views:>8}  {path}")
    click.echo(f"{sum(v for _, v in rows)} view(s) since {since:%Y-%m-%d}")
