"""Checklist flow: request (POST /api/checklists/<slug>), download (GET /download/<token>), renew.

The lead and its link's mail are written in one transaction before the visitor gets an answer;
the mail leaves later through the outbox. A download link is signed and time-limited (itsdangerous,
under every key in SECRET_KEY_FALLBACKS too); only a hash of its secret is stored. Opening it is the
double opt-in: the lead is confirmed and only then does a newsletter wish count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flask import Blueprint, Flask, abort, current_app, redirect, request, send_file
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from leadform import db, mail, outbox
from leadform.config import signing_keys
from leadform.forms import ChecklistForm, form_post
from leadform.models import Download, Lead, utcnow
from leadform.web import per_email, per_ip, remember_sent_to, render_page
from site_config import Checklist, load_settings

bp = Blueprint("checklists", __name__)
log = logging.getLogger("leadform.checklists")
THANK_YOU = "/checklists/bedankt/"
UNAVAILABLE = ("Er ging iets mis bij het bewaren van je aanvraag. Er is niets verloren: je gegevens staan "
               "hieronder nog ingevuld. Probeer het later opnieuw.")


def checklist_or_404(slug: str) -> Checklist:
    try:
        return load_settings().checklist(slug)
    except KeyError:
        abort(404)


def form_page(form: ChecklistForm, checklist: Checklist, status: int, notice: str | None = None):
    return render_page("form_page.html", status, kind="checklist", form=form, checklist=checklist,
                       title=f"Vraag de {checklist.title} aan", notice=notice, csrf_token=generate_csrf())


# -- download links --------------------------------------------------------------------------------------

class LinkExpired(Exception):
    pass


class LinkInvalid(Exception):
    """Tampered with, or made with another secret."""


def _links() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_keys(current_app.config), salt="download-link")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def valid_days() -> int:
    return load_settings().limits.link_valid_days


def secret_from(token: str, *, allow_expired: bool = False) -> str:
    """The secret inside a signed token; raises LinkExpired or LinkInvalid."""
    try:
        return _links().loads(token, max_age=None if allow_expired else valid_days() * 86400)
    except SignatureExpired:
        raise LinkExpired() from None
    except BadSignature:
        raise LinkInvalid() from None


def link_mail(lead: object, checklist: Checklist) -> tuple[str, mail.Mail]:
    """A new link secret and the mail that carries it (only the secret's hash is stored)."""
    secret = secrets.token_urlsafe(24)
    base = current_app.config.get("PUBLIC_URL") or load_settings().site.url
    link = base.rstrip("/") + "/download/" + _links().dumps(secret)
    return secret, mail.checklist_link(lead, checklist, link)


def pdf_path(checklist: Checklist) -> Path:
    return Path(current_app.config["PDF_DIR"]) / checklist.filename


# -- storage ---------------------------------------------------------------------------------------------

def save_lead(s: Session, checklist: str, email: str, name: str, newsletter: bool) -> tuple[int, bool, bool]:
    """Insert the lead, or update the one that asked for this checklist before, in one statement, so two
    requests for one address at the same moment both succeed. Returns its id, whether it is new, and
    its newsletter wish (once asked, it stays asked)."""
    row = s.execute(_upsert_lead(s.get_bind().dialect.name), {
        "checklist": checklist, "email": email, "name": name, "newsletter": newsletter, "now": utcnow()}).one()
    lead_id, count, wants_newsletter = row
    return lead_id, count == 1, bool(wants_newsletter)


@cache
def _upsert_lead(dialect: str) -> Any:
    """The statement, built once per dialect with bound parameters (building its ON CONFLICT clause
    cost more than running it)."""
    insert = db.dialect_insert(dialect, Lead).values(
        checklist=bindparam("checklist"), email=bindparam("email"), name=bindparam("name"),
        newsletter_requested=bindparam("newsletter"), created_at=bindparam("now"), updated_at=bindparam("now"),
        request_count=1)
    return insert.on_conflict_do_update(index_elements=[Lead.checklist, Lead.email], set_={
        "name": insert.excluded.name, "updated_at": insert.excluded.updated_at,
        "request_count": Lead.request_count + 1,
        "newsletter_requested": or_(Lead.newsletter_requested, insert.excluded.newsletter_requested),
    }).returning(Lead.id, Lead.request_count, Lead.newsletter_requested)


def queue_link(s: Session, lead_id: int, email: str, newsletter: bool, secret: str, message: mail.Mail) -> bool:
    """Store the link and queue its mail, unless the mailbox had its mails for today
    (outbox.queue_for_visitor: every form and every spelling of the address count together)."""
    if not outbox.queue_for_visitor(s, mail.with_unsubscribe(message) if newsletter else message, lead_id=lead_id):
        return False
    s.add(Download(lead_id=lead_id, token_hash=hash_secret(secret), created_at=utcnow(),
                   expires_at=utcnow() + dt.timedelta(days=valid_days()), use_count=0))
    return True


def find_download(s: Session, secret: str) -> Download | None:
    return s.scalars(select(Download).where(Download.token_hash == hash_secret(secret))).first()


# -- routes ----------------------------------------------------------------------------------------------

@bp.post("/api/checklists/<slug>")
@per_ip("form_per_ip", scope="form-checklist")
@per_email(scope="email-checklist")
@form_post
def request_checklist(slug: str):
    checklist = checklist_or_404(slug)
    form = ChecklistForm()
    if not form.validate():
        log.info("checklist request invalid checklist=%s fields=%s", slug, ",".join(sorted(form.errors)))
        return form_page(form, checklist, 400)
    secret, message = link_mail(SimpleNamespace(email=form.email.data), checklist)
    s = db.session()
    try:
        with s.begin():
            lead_id, is_new, newsletter = save_lead(s, slug, form.email.data, form.name.data,
                                                    bool(form.newsletter.data))
            queued = queue_link(s, lead_id, form.email.data, newsletter, secret, message)
    except SQLAlchemyError as exc:
        log.error("checklist request not stored checklist=%s error=%s", slug, type(exc).__name__)
        return form_page(form, checklist, 503, notice=UNAVAILABLE)
    log.info("checklist requested checklist=%s lead_id=%s new=%s mail_queued=%s", slug, lead_id, is_new, queued)
    if queued:
        outbox.kick()
    remember_sent_to(form.email.data)
    return redirect(THANK_YOU, code=303)


@bp.get("/download/<token>")
@per_ip("download_per_ip", scope="download")
def download(token: str):
    try:
        secret = secret_from(token)
    except LinkExpired:
        return _expired(token)
    except LinkInvalid:
        return _invalid()
    s = db.session()
    with s.begin():
        row = find_download(s, secret)
        if row is None:
            return _invalid()
        if row.expires_at < utcnow():
            return _expired(token)
        lead = row.lead
        checklist = load_settings().checklist(lead.checklist)
        pdf = pdf_path(checklist)
        if not pdf.is_file():  # nothing delivered, so nothing confirmed: the visitor may come back
            log.error("checklist pdf missing checklist=%s", checklist.slug)
            return render_page("message_page.html", 503, title="Even niet beschikbaar", paragraphs=[
                "De checklist kan nu even niet gedownload worden. Je link blijft geldig: probeer het later opnieuw."])
        # Only a GET that delivers the PDF confirms; a HEAD (a mail scanner, a link preview) answers the
        # same without any of it.
        newly_confirmed = request.method == "GET" and lead.confirmed_at is None
        if request.method == "GET":
            now = utcnow()
            row.use_count += 1
            row.first_used_at = row.first_used_at or now
        if newly_confirmed:  # double opt-in: only now does a newsletter consent count
            lead.confirmed_at = now
            if lead.newsletter_requested:
                lead.newsletter_consent_at = now
            notice = mail.coach_new_lead(lead, checklist)
            if notice:
                outbox.queue(s, notice)
    log.info("checklist downloaded lead_id=%s confirmed_now=%s", lead.id, newly_confirmed)
    if newly_confirmed:
        outbox.kick()
    response = send_file(pdf, mimetype="application/pdf", as_attachment=True, download_name=checklist.filename,
                         max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


def _expired(token: str):
    return render_page("message_page.html", 410, title="Deze link is verlopen", renew_token=token, paragraphs=[
        f"Persoonlijke downloadlinks blijven {valid_days()} dagen geldig, en deze is ouder.",
        "Geen probleem: vraag hieronder een nieuwe link aan. We sturen hem naar hetzelfde e-mailadres.",
    ])


def _invalid():
    settings = load_settings()
    return render_page("message_page.html", 404, title="Deze link werkt niet", paragraphs=[
        "Deze downloadlink is onvolledig of niet meer geldig. Misschien werd hij bij het kopiëren afgebroken.",
        "Vraag de checklist gewoon opnieuw aan: je krijgt meteen een nieuwe link.",
    ], links=[(f"/checklists/{c.slug}/", f"Vraag de {c.title} aan") for c in settings.checklists])


@bp.post("/download/renew")
@per_ip("form_per_ip", scope="form-renew")
@form_post
def renew():
    try:
        secret = secret_from(request.form.get("token", ""), allow_expired=True)
    except LinkInvalid:
        return _invalid()
    s = db.session()
    with s.begin():
        row = find_download(s, secret)
        if row is None:
            return _invalid()
        lead = row.lead
        secret, message = link_mail(lead, load_settings().checklist(lead.checklist))
        queued = queue_link(s, lead.id, lead.email, lead.newsletter_requested, secret, message)
    log.info("download link renewed lead_id=%s mail_queued=%s", lead.id, queued)
    if queued:
        outbox.kick()
    remember_sent_to(None)  # whoever holds an old link does not learn the address from the page
    return redirect(THANK_YOU, code=303)


def ensure_pdfs(app: Flask) -> None:
    """`make build` writes the checklist PDFs; an app started without them builds them once."""
    from leadform.pdf import build_pdfs

    folder = Path(app.config["PDF_DIR"])
    if not all((folder / c.filename).exists() for c in load_settings().checklists):
        build_pdfs(folder)
        log.info("checklist pdfs built folder=%s", folder.name)
