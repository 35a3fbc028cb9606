"""What each mail says: composed from templates (HTML autoescaped) and queued in the outbox.

Visitor input only ever goes into bodies; headers get fixed subjects and
addresses that passed email-validator.
"""

from __future__ import annotations

from flask import current_app, render_template
from sqlalchemy.orm import Session

from leadform import outbox
from leadform.models import ContactMessage, Lead, OutboxMail
from site_config import Checklist, load_settings


def coach_address() -> str:
    return current_app.config.get("COACH_EMAIL") or load_settings().coach.email


def _queue(s: Session, kind: str, to: str, subject: str, template: str, *, html: bool = True,
           headers: dict[str, str] | None = None, lead_id: int | None = None, **context: object) -> OutboxMail:
    context.update(settings=load_settings(), coach=load_settings().coach)
    return outbox.queue(
        s, kind=kind, to=to, subject=subject, headers=headers, lead_id=lead_id,
        text=render_template(f"mail/{template}.txt", **context),
        html=render_template(f"mail/{template}.html", **context) if html else None,
    )


def queue_checklist_link(s: Session, lead: Lead, checklist: Checklist, link: str) -> OutboxMail:
    headers = {}
    if lead.newsletter_requested:
        headers["List-Unsubscribe"] = f"<mailto:{coach_address()}?subject=uitschrijven>"
    return _queue(s, "checklist_link", lead.email, f"Je {checklist.title}: je persoonlijke downloadlink",
                  "checklist_link", headers=headers, lead_id=lead.id, lead=lead, checklist=checklist,
                  link=link, days=load_settings().limits.link_valid_days)


def queue_coach_new_lead(s: Session, lead: Lead, checklist: Checklist) -> OutboxMail | None:
    if not current_app.config["NOTIFY_COACH"]:
        return None
    return _queue(s, "coach_new_lead", coach_address(), f"Nieuwe bevestigde aanvraag: {checklist.title}",
                  "coach_new_lead", html=False, lead=lead, checklist=checklist)


def queue_contact_to_coach(s: Session, message: ContactMessage, subject_label: str) -> OutboxMail:
    return _queue(s, "contact_to_coach", coach_address(), f"Nieuw bericht via de website: {subject_label}",
                  "contact_to_coach", headers={"Reply-To": message.email}, message=message,
                  subject_label=subject_label)


def queue_contact_confirmation(s: Session, message: ContactMessage) -> OutboxMail | None:
    if not current_app.config["CONTACT_CONFIRMATION"]:
        return None
    return _queue(s, "contact_confirmation", message.email, "We hebben je bericht goed ontvangen",
                  "contact_confirmation", message=message)


def queue_failure_report(s: Session, mail: OutboxMail, error: str) -> OutboxMail:
    return _queue(s, "coach_mail_failed", coach_address(), "Een e-mail van de website kon niet verstuurd worden",
                  "mail_failed", html=False, mail=mail, error=error)
