"""Contact flow: POST /api/contact stores the message, then mails the coach through the outbox.

A filled honeypot gets the same thank-you redirect as people but nothing is stored. A submit
faster than `contact_min_seconds` after the visitor started the form (browser autofill can be that
fast), or without a valid start time (no JavaScript, another session, a form open for hours), gets
the form back, filled in, with a request to send it once more: a person loses nothing.
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
        # No JavaScript, or a start time from another session or hours old: the form again, filled in.
        log.info("contact shown again reason=%s", reason)
        return form_page(form, 400, notice="Bijna klaar: kijk je bericht na en verstuur het opnieuw.",
                         resubmit=True)
    if reason == "too-fast":
        # Autofill, or a bot: a person clicks once more, a bot that does so still meets the honeypot.
        log.info("contact shown again reason=%s", reason)
        return form_page(form, 400, resubmit=True, notice=(
            "Dat ging erg snel, daarom vragen we je om te bevestigen dat je een mens bent: kijk je bericht "
            "na en klik nog eens op verzenden. Er is nog niets verstuurd."))
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
            outbox.queue(s, mail.contact_to_coach(message, SUBJECTS[form.subject.data], form.moment.data))
            confirmation = mail.contact_confirmation(message)
            if confirmation:  # the coach always hears; the visitor's mailbox only within its daily limit
                outbox.queue_for_visitor(s, confirmation)
    except SQLAlchemyError as exc:
        log.error("contact not stored error=%s", type(exc).__name__)
        return form_page(form, 503, notice=UNAVAILABLE)
    log.info("contact stored message_id=%s", message.id)
    outbox.kick()
    remember_sent_to(form.email.data if current_app.config["CONTACT_CONFIRMATION"] else None)
    return redirect(THANK_YOU, code=303)
