"""What each mail says: composed from templates (HTML autoescaped), then queued in the outbox.

Composing is separate from queueing so that the checklist and contact requests render their
mail before they open their transaction: the database stays locked for the INSERTs only, not
for the templates. (The rarer paths, a renewed link or a failure report, compose inside theirs.)
Visitor input only ever goes into bodies; headers get fixed subjects and addresses that
passed email-validator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from flask import current_app, render_template

from site_config import Checklist, load_settings


@dataclass(frozen=True)
class Mail:
    kind: str
    to: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def coach_address() -> str:
    return current_app.config.get("COACH_EMAIL") or load_settings().coach.email


def _compose(kind: str, to: str, subject: str, template: str, *, html: bool = True,
             headers: dict[str, str] | None = None, **context: object) -> Mail:
    context.update(settings=load_settings(), coach=load_settings().coach)
    return Mail(kind=kind, to=to, subject=subject, headers=headers or {},
                text=render_template(f"mail/{template}.txt", **context),
                html=render_template(f"mail/{template}.html", **context) if html else None)


def checklist_link(lead: object, checklist: Checklist, link: str) -> Mail:
    """`lead` needs a name and an email; it may be a lead not stored yet."""
    return _compose("checklist_link", lead.email, f"Je {checklist.title}: je persoonlijke downloadlink",
                    "checklist_link", lead=lead, checklist=checklist, link=link,
                    days=load_settings().limits.link_valid_days)


def with_unsubscribe(mail: Mail) -> Mail:
    """The mail with a List-Unsubscribe header, for a lead who asked for the newsletter."""
    unsubscribe = f"<mailto:{coach_address()}?subject=uitschrijven>"
    return replace(mail, headers={**mail.headers, "List-Unsubscribe": unsubscribe})


def coach_new_lead(lead: object, checklist: Checklist) -> Mail | None:
    if not current_app.config["NOTIFY_COACH"]:
        return None
    return _compose("coach_new_lead", coach_address(), f"Nieuwe bevestigde aanvraag: {checklist.title}",
                    "coach_new_lead", html=False, lead=lead, checklist=checklist)


def contact_to_coach(message: object, subject_label: str) -> Mail:
    return _compose("contact_to_coach", coach_address(), f"Nieuw bericht via de website: {subject_label}",
                    "contact_to_coach", headers={"Reply-To": message.email}, message=message,
                    subject_label=subject_label)


def contact_confirmation(message: object) -> Mail | None:
    if not current_app.config["CONTACT_CONFIRMATION"]:
        return None
    return _compose("contact_confirmation", message.email, "We hebben je bericht goed ontvangen",
                    "contact_confirmation", message=message)


def failure_report(mail: object, error: str) -> Mail:
    return _compose("coach_mail_failed", coach_address(), "Een e-mail van de website kon niet verstuurd worden",
                    "mail_failed", html=False, mail=mail, error=error)
