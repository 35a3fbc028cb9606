"""Checklist flow: request (POST /api/checklists/<slug>), download (GET /download/<token>), renew.

The lead and its mail are written in one transaction before the visitor gets an
answer; the mail leaves later through the outbox.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

from flask import Blueprint, abort, redirect, request, send_file
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from leadform import db, direct_sql, lead_store, links, mails, outbox
from leadform.extensions import per_email, per_ip
from leadform.form_input import form_post
from leadform.forms import ChecklistForm
from leadform.models import Download, utcnow
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


def link_mail(lead: object, checklist: Checklist) -> tuple[str, mails.Mail]:
    """A new link secret and the mail that carries it, made before any transaction begins."""
    secret, token = links.new_secret()
    return secret, mails.checklist_link(lead, checklist, links.public_url(token))


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
    # The mail needs only the name and address: a plain object, not an ORM Lead nobody stores.
    secret, mail = link_mail(SimpleNamespace(name=form.name.data, email=form.email.data), checklist)
    try:
        with direct_sql.transaction(db.engine()) as tx:
            lead_id, is_new, newsletter = lead_store.save_lead(tx, slug, form.email.data, form.name.data,
                                                               bool(form.newsletter.data))
            queued = lead_store.queue_link(tx, lead_id, form.email.data, newsletter, secret, mail)
    except SQLAlchemyError as exc:
        log.error("checklist request not stored checklist=%s error=%s", slug, type(exc).__name__)
        return form_page(form, checklist, 503, notice=UNAVAILABLE)
    log.info("checklist requested checklist=%s lead_id=%s new=%s mail_queued=%s", slug, lead_id, is_new, queued)
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
            notice = mails.coach_new_lead(lead, checklist)
            if notice:
                outbox.queue(s, notice)
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
        secret, mail = link_mail(lead, load_settings().checklist(lead.checklist))
        queued = lead_store.queue_link(s, lead.id, lead.email, lead.newsletter_requested, secret, mail)
    log.info("download link renewed lead_id=%s mail_queued=%s", lead.id, queued)
    if queued:
        outbox.kick()
    return redirect(THANK_YOU, code=303)
