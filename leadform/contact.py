"""Contact flow: POST /api/contact stores the message, then mails the coach through the outbox.

Bots get the same thank-you redirect as people but nothing is stored: a filled
honeypot or a submit faster than `contact_min_seconds` after the form was shown.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, redirect
from flask_wtf.csrf import generate_csrf
from sqlalchemy.exc import SQLAlchemyError

from leadform import db, mail, outbox
from leadform.forms import SUBJECTS, ContactForm, form_post, issue_started, seconds_since
from leadform.models import ContactMessage, utcnow
from leadform.web import per_email, per_ip, remember_sent_to, render_page
from site_config import load_settings

bp = Blueprint("contact", __name__)
log = logging.getLogger("leadform.contact")
THANK_YOU = "/contact/bedankt/"
UNAVAILABLE = ("Er ging iets mis bij het bewaren van je bericht. Er is niets verloren: je bericht staat "
               "hieronder nog ingevuld. Probeer het later opnieuw.")


def form_page(form: ContactForm, status: int, notice: str | None = None, *, resubmit: bool = False):
    """The form again, filled in. On a resubmit (no JavaScript) the visitor already spent the
    time typing on the static page, so the start time is backdated by the minimum."""
    backdate = load_settings().limits.contact_min_seconds if resubmit else 0
    return render_page("form_page.html", status, kind="contact", form=form, title="Stuur een bericht",
                       notice=notice, csrf_token=generate_csrf(), started=issue_started(backdate))


def is_bot(form: ContactForm) -> str | None:
    """Why this submission looks automated, or None."""
    if form.website.data:
        return "honeypot"
    elapsed = seconds_since(form.started.data)
    if elapsed is None:
        return "no-start-token"
    if elapsed < load_settings().limits.contact_min_seconds:
        return "too-fast"
    return None


@bp.post("/api/contact")
@per_ip("form_per_ip", scope="form-contact")
@per_email(scope="email-contact")
@form_post
def contact():
    form = ContactForm()
    if not form.validate():
        log.info("contact invalid fields=%s", ",".join(sorted(form.errors)))
        return form_page(form, 400)
    reason = is_bot(form)
    if reason == "no-start-token":
        # A person without JavaScript: show the form again, filled in, with a fresh start time.
        return form_page(form, 400, notice="Bijna klaar: kijk je bericht na en verstuur het opnieuw.",
                         resubmit=True)
    if reason:
        log.info("contact dropped reason=%s", reason)
        return redirect(THANK_YOU, code=303)
    # A suggested moment ("Maak een afspraak" without an online agenda) is kept with the message itself.
    text = form.message.data + (f"\n\n{mail.MOMENT_LABEL}: {form.moment.data}" if form.moment.data else "")
    message = ContactMessage(name=form.name.data, email=form.email.data, phone=form.phone.data or None,
                             subject=form.subject.data, message=text, created_at=utcnow())
    s = db.session()
    try:
        with s.begin():
            s.add(message)
            for composed in (mail.contact_to_coach(message, SUBJECTS[form.subject.data], form.moment.data),
                             mail.contact_confirmation(message)):
                if composed:
                    outbox.queue(s, composed)
    except SQLAlchemyError as exc:
        log.error("contact not stored error=%s", type(exc).__name__)
        return form_page(form, 503, notice=UNAVAILABLE)
    log.info("contact stored message_id=%s", message.id)
    outbox.kick()
    remember_sent_to(form.email.data if current_app.config["CONTACT_CONFIRMATION"] else None)
    return redirect(THANK_YOU, code=303)
