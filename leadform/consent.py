"""Consent proof and the analytics it allows.

POST /api/consent appends one record per cookie choice (GDPR art. 7(1)).

The banner (site_config/overrides/partials/consent.html + consent.js) posts every choice here.
A record holds a random record id, a subject id, the event, the UTC time, the choice per category,
the button, the policy version, the hash of the banner text the visitor saw, the expiry and the site
build. No IP address, no user agent, no URL. Records are never updated; erasure and retention purge
delete whole rows. What makes the records proof:

- The subject id is issued by this server: a random id, signed (itsdangerous, under the app's keys),
  in the cookie `consent_subject` with Path=/api/consent, so it travels with nothing but the next
  choice. It is set only when a choice allows something optional (a later withdrawal must be
  recorded under the same id); a refusal gets a record under a fresh id and removes the cookie, so
  a refusal leaves no lasting id in the browser. A cookie whose signature does not hold is refused:
  nobody can write records for an id the server did not give them.
- The banner hash must be one the current build published (site_config/published.py).
- Records are limited per subject, new subjects per IP (an IPv6 /64 as one), and for the whole
  site (site.yml `limits`), so a handful of addresses cannot fill the proof, or `consent stats`,
  with made-up choices; `consent stats` counts each subject's last choice once a week.

POST /api/analytics counts one page view per path per day (UTC): docs/assets/javascripts/analytics.js
sends the page's path as text/plain, only after the visitor allowed "analytics" in the banner. Only
the paths of pages the build published count (a made-up path is refused). Nothing about the visitor
is read or kept: no cookie, no IP address, no user agent, no referrer, no query string; the table
holds (day, path, count) and nothing else, purged after `retention.page_view_days`.

Both are exempt from Flask-WTF's token and limited to same-origin requests instead
(web.require_same_origin).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from flask import Blueprint, Response, abort, current_app, g, has_app_context, jsonify, request
from itsdangerous import BadSignature, Signer
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from leadform import db
from leadform.config import signing_keys
from leadform.models import BRUSSELS, ConsentRecord, PageView, belgian_time, new_id, utcnow
from leadform.web import csrf, ip_key, limiter, read_body
from site_config import Consent, load_settings
from site_config.published import Published, read_published

bp = Blueprint("consent", __name__, cli_group="consent")
csrf.exempt(bp)
analytics_bp = Blueprint("analytics", __name__, cli_group="analytics")
csrf.exempt(analytics_bp)
log = logging.getLogger("leadform.consent")

SUBJECT_COOKIE = "consent_subject"
SUBJECT_PATH = "/api/consent"   # the only path that reads it
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


def parse_choice(body: bytes, consent: Consent, banner_hashes: frozenset[str] | None = None) -> Choice:
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
    if not isinstance(banner_hash, str) or not BANNER_HASH.fullmatch(banner_hash) \
            or (banner_hashes is not None and banner_hash not in banner_hashes):
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
    """A valid 'Alles accepteren' as the banner sends it (tests and bench/endpoints.py), with the banner
    hash of the app's built site."""
    consent = load_settings().consent
    site = published() if has_app_context() else None
    banner_hash = min(site.banner_hashes) if site and site.banner_hashes else "0123456789abcdef"
    return {"event": "given", "choices": {cid: True for cid in consent.category_ids}, "button": "accept_all",
            "policy_version": consent.policy_version, "banner_hash": banner_hash}


# -- what the build published ----------------------------------------------------------------------------

_published_cache: dict[str, tuple[float | None, Published | None]] = {}


def published() -> Published | None:
    """The current build's pages and banner hashes (site_config/published.py), read again after a rebuild."""
    folder = Path(current_app.config["SITE_DIR"])
    try:
        mtime: float | None = (folder / ".published.json").stat().st_mtime
    except OSError:
        mtime = None
    seen = _published_cache.get(str(folder))
    if seen is None or seen[0] != mtime:
        seen = _published_cache[str(folder)] = (mtime, read_published(folder))
    return seen[1]


def required_published() -> Published:
    site = published()
    if site is None:
        log.error("site not published: no .published.json in SITE_DIR; run the build")
        abort(503)
    return site


# -- subject ids -----------------------------------------------------------------------------------------

def _signer() -> Signer:
    return Signer(signing_keys(current_app.config), salt="consent-subject")


def sign_subject(subject: str) -> str:
    return _signer().sign(subject).decode()


def verified_subject(value: str) -> str | None:
    """The subject id in a signed cookie value, or None when the signature does not hold."""
    try:
        subject = _signer().unsign(value).decode()
    except (BadSignature, UnicodeDecodeError):
        return None
    return subject if RANDOM_ID.fullmatch(subject) else None


def cookie_subject() -> str | None:
    """The visitor's server-issued subject id, or None. A bare id as cookies held before ids were signed
    (Path=/) is ignored: that visitor gets a new id, never the old one. `g.consent_forged` notes any other
    value whose signature does not hold."""
    if "consent_subject" not in g:
        values = [v for v in request.cookies.getlist(SUBJECT_COOKIE) if not RANDOM_ID.fullmatch(v)]
        subjects = [s for s in map(verified_subject, values) if s]
        g.consent_subject = subjects[0] if subjects else None
        g.consent_forged = bool(values) and not subjects
        g.consent_legacy = any(RANDOM_ID.fullmatch(v) for v in request.cookies.getlist(SUBJECT_COOKIE))
    return g.consent_subject


def subject_key() -> str:
    return f"subject:{cookie_subject()}"


def new_subject() -> bool:
    return cookie_subject() is None


def recorded(response: Response) -> bool:
    """Only a stored record counts against a subject, an IP's new subjects and the site."""
    return response.status_code == 201


def per_subject() -> str:
    return load_settings().limits.consent_per_subject


def subjects_per_ip() -> str:
    return load_settings().limits.consent_subjects_per_ip


def records_global() -> str:
    return load_settings().limits.consent_records_global


@bp.post("/api/consent")
@limiter.limit(lambda: load_settings().limits.consent_per_ip, scope="consent")
@limiter.limit(records_global, key_func=lambda: "site", scope="consent-site", deduct_when=recorded)
@limiter.limit(subjects_per_ip, key_func=ip_key, scope="consent-new-subject", exempt_when=lambda: not new_subject(),
               deduct_when=recorded)
@limiter.limit(per_subject, key_func=subject_key, scope="consent-subject", exempt_when=new_subject,
               deduct_when=recorded)
def record() -> tuple[Response, int]:
    consent = load_settings().consent
    site = required_published()
    try:
        choice = parse_choice(read_body("application/json", MAX_BODY), consent, site.banner_hashes)
    except InvalidChoice as exc:
        log.info("consent payload rejected reason=%s", exc)
        abort(400)
    subject = cookie_subject()
    if g.get("consent_forged"):
        log.info("consent payload rejected reason=subject not signed by this server")
        abort(400)
    subject = subject or new_id()
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
    secure = bool(current_app.config["PUBLIC_HTTPS"])
    if g.consent_legacy:  # the unsigned id of before, sent with every request of the site: gone
        response.delete_cookie(SUBJECT_COOKIE, path="/", secure=secure, httponly=True, samesite="Lax")
    if any(choice.choices[c] for c in consent.optional_ids):
        response.set_cookie(SUBJECT_COOKIE, sign_subject(subject), max_age=consent.max_age_days * 86400,
                            path=SUBJECT_PATH, secure=secure, httponly=True, samesite="Strict")
    else:  # nothing allowed: the proof is stored, the browser keeps no id
        response.delete_cookie(SUBJECT_COOKIE, path=SUBJECT_PATH, secure=secure, httponly=True, samesite="Strict")
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
    'Alles weigeren', eigen = een keuze via 'Instellingen'. Each visitor (subject id) counts once a
    week, with their last choice of that week, so repeated records cannot tilt the shares."""
    first = week_start(belgian_time(utcnow()).date()) - dt.timedelta(weeks=weeks - 1)
    counts = {first + dt.timedelta(weeks=i): dict.fromkeys(BUTTONS, 0) for i in range(weeks)}
    since = dt.datetime.combine(first, dt.time(), BRUSSELS).astimezone(dt.UTC).replace(tzinfo=None)
    last: dict[tuple[dt.date, str], str] = {}
    with db.transaction() as s:
        rows = s.execute(select(ConsentRecord.created_at, ConsentRecord.subject_id, ConsentRecord.button)
                         .where(ConsentRecord.created_at >= since)
                         .order_by(ConsentRecord.created_at, ConsentRecord.id))
        for created_at, subject, button in rows:
            last[(week_start(belgian_time(created_at).date()), subject)] = button
    for (week, _), button in last.items():
        if week in counts and button in counts[week]:
            counts[week][button] += 1
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
    """Every recorded choice of one visitor (their consent_subject cookie: the id, or the id and its
    signature), as JSON."""
    subject_id = subject_id.strip().lower().split(".", 1)[0]
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
    if not valid_path(path) or path not in required_published().paths:
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
