"""Contact flow: POST /api/contact stores the message, then mails the coach through the outbox.

Bots get the same thank-you redirect as people but nothing is stored: a filled
honeypot or a submit faster than `contact_min_seconds` after the form was shown.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

from flask import Blueprint, redirect
from sqlalchemy import insert
from sqlalchemy.exc import SQLAlchemyError

from leadform import db, direct_sql, mails, outbox
from leadform.extensions import per_email, per_ip
from leadform.form_input import form_post
from leadform.forms import SUBJECTS, ContactForm
from leadform.models import ContactMessage, utcnow
from leadform.pages import render_page
from leadform.timing import issue_started, seconds_since
from site_config import load_settings

bp = Blueprint("contact", __name__)
log = logging.getLogger("leadform.contact")
THANK_YOU = "/contact/bedankt/"
# Core, run on the DBAPI connection (leadform/direct_sql.py): this runs inside the database's write lock
INSERT_MESSAGE = insert(ContactMessage.__table__).returning(ContactMessage.id)
UNAVAILABLE = ("Er ging iets mis bij het bewaren van je bericht. Er is niets verloren: je bericht staat "
               "hieronder nog ingevuld. Probeer het later opnieuw.")


def form_page(form: ContactForm, status: int, notice: str | None = None, *, resubmit: bool = False):
    """The form again, filled in. On a resubmit (no JavaScript) the visitor already spent the
    time typing on the static page, so the start time is backdated by the minimum."""
    from flask_wtf.csrf import generate_csrf

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
    row = {"name": form.name.data, "email": form.email.data, "phone": form.phone.data or None,
           "subject": form.subject.data, "message": form.message.data}
    message = SimpleNamespace(**row)  # what the mails read; the row is stored as a Core INSERT
    to_coach = mails.contact_to_coach(message, SUBJECTS[form.subject.data])
    confirmation = mails.contact_confirmation(message)
    try:
        with direct_sql.transaction(db.engine()) as tx:
            message_id = tx.execute(INSERT_MESSAGE, {**row, "created_at": utcnow()}).scalar()
            for mail in (to_coach, confirmation):
                if mail:
                    outbox.queue(tx, mail)
    except SQLAlchemyError as exc:
        log.error("contact not stored error=%s", type(exc).__name__)
        return form_page(form, 503, notice=UNAVAILABLE)
    log.info("contact stored message_id=%s", message_id)
    outbox.kick()
    return redirect(THANK_YOU, code=303)
