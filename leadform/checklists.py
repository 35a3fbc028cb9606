"""Checklist flow: request (POST /api/checklists/<slug>), download (GET /download/<token>), renew.

The lead and its mail are written in one transaction before the visitor gets an
answer; the mail leaves later through the outbox.
"""

from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, abort, redirect, request, send_file
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from leadform import db, links, mails, outbox
from leadform.extensions import per_email, per_ip
from leadform.form_input import form_post
from leadform.forms import ChecklistForm
from leadform.models import Download, Lead, OutboxMail, utcnow
from leadform.pages import render_page
from leadform.pdf_store import pdf_path
from site_config import Checklist, load_settings

bp = Blueprint("checklists", __name__)
log = logging.getLogger("leadform.checklists")
THANK_YOU = "/checklists/bedankt/"


def _checklist(slug: str) -> Checklist:
    try:
        return load_settings().checklist(slug)
    except KeyError:
        abort(404)


def form_page(form: ChecklistForm, checklist: Checklist, status: int, notice: str | None = None):
    return render_page("form_page.html", status, kind="checklist", form=form, checklist=checklist,
                       title=f"Vraag de {checklist.title} aan", notice=notice, csrf_token=_csrf())


def _csrf() -> str:
    from flask_wtf.csrf import generate_csrf

    return generate_csrf()


def mails_today(s, email: str) -> int:
    since = utcnow() - dt.timedelta(days=1)
    return s.scalar(select(func.count()).select_from(OutboxMail).where(
        OutboxMail.to_addr == email, OutboxMail.kind == "checklist_link", OutboxMail.created_at >= since)) or 0


def send_link(s, lead: Lead, checklist: Checklist) -> bool:
    """Queue a mail with a new personal link, unless the address had its mails for today."""
    if mails_today(s, lead.email) >= load_settings().limits.mails_per_address_per_day:
        return False
    _, token = links.new_download(lead)
    mails.queue_checklist_link(s, lead, checklist, links.public_url(token))
    return True


def find_download(s, secret: str) -> Download | None:
    return s.scalars(select(Download).where(Download.token_hash == links.hash_secret(secret))).first()


@bp.post("/api/checklists/<slug>")
@per_ip("form_per_ip", scope="form-checklist")
@per_email(scope="email-checklist")
@form_post
def request_checklist(slug: str):
    checklist = _checklist(slug)
    form = ChecklistForm()
    if not form.validate():
        log.info("checklist request invalid checklist=%s fields=%s", slug, ",".join(sorted(form.errors)))
        return form_page(form, checklist, 400)
    s = db.session()
    try:
        with s.begin():
            lead = s.scalars(select(Lead).where(Lead.checklist == slug, Lead.email == form.email.data)).first()
            is_new = lead is None
            if is_new:
                lead = Lead(checklist=slug, email=form.email.data, name=form.name.data,
                            newsletter_requested=bool(form.newsletter.data))
                s.add(lead)
                s.flush()
            else:
                lead.name = form.name.data
                lead.newsletter_requested = lead.newsletter_requested or bool(form.newsletter.data)
                lead.request_count += 1
            queued = send_link(s, lead, checklist)
    except SQLAlchemyError as exc:
        s.rollback()
        log.error("checklist request not stored checklist=%s error=%s", slug, type(exc).__name__)
        return form_page(form, checklist, 503, notice=UNAVAILABLE)
    log.info("checklist requested checklist=%s lead_id=%s new=%s mail_queued=%s", slug, lead.id, is_new, queued)
    if queued:
        outbox.kick()
    return redirect(THANK_YOU, code=303)


UNAVAILABLE = ("Er ging iets mis bij het bewaren van je aanvraag. Er is niets verloren: je gegevens staan "
               "hieronder nog ingevuld. Probeer het later opnieuw.")


@bp.get("/download/<token>")
@per_ip("download_per_ip", scope="download")
def download(token: str):
    try:
        secret = links.secret_from(token)
    except links.LinkExpired:
        return _expired(token)
    except links.LinkInvalid:
        return _invalid()
    s = db.session()
    with s.begin():
        row = find_download(s, secret)
        if row is None:
            return _invalid()
        if row.expires_at < utcnow():
            return _expired(token)
        lead = row.lead
        now = utcnow()
        row.use_count += 1
        row.first_used_at = row.first_used_at or now
        checklist = load_settings().checklist(lead.checklist)
        newly_confirmed = lead.confirmed_at is None
        if newly_confirmed:  # double opt-in: only now does a newsletter consent count
            lead.confirmed_at = now
            if lead.newsletter_requested:
                lead.newsletter_consent_at = now
            mails.queue_coach_new_lead(s, lead, checklist)
    log.info("checklist downloaded lead_id=%s confirmed_now=%s", lead.id, newly_confirmed)
    if newly_confirmed:
        outbox.kick()
    response = send_file(pdf_path(checklist), mimetype="application/pdf", as_attachment=True,
                         download_name=checklist.filename, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


def _expired(token: str):
    return render_page("message_page.html", 410, title="Deze link is verlopen", renew_token=token, paragraphs=[
        f"Persoonlijke downloadlinks blijven {links.valid_days()} dagen geldig, en deze is ouder.",
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
    token = request.form.get("token", "")
    try:
        secret = links.secret_from(token, allow_expired=True)
    except links.LinkInvalid:
        return _invalid()
    s = db.session()
    with s.begin():
        row = find_download(s, secret)
        if row is None:
            return _invalid()
        lead = row.lead
        queued = send_link(s, lead, load_settings().checklist(lead.checklist))
    log.info("download link renewed lead_id=%s mail_queued=%s", lead.id, queued)
    if queued:
        outbox.kick()
    return redirect(THANK_YOU, code=303)
