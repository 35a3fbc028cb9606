"""What each mail says: the facts it needs, stored with it in the outbox, and its templates
(HTML autoescaped), rendered when it is sent.

Why rendered at delivery: the checklist and contact requests store their mail before they
answer, and rendering it there took about a fifth of such a request's CPU under load
(bench/endpoints.py). The outbox thread renders it in the gaps between requests instead; a
mail's context holds only JSON values (a checklist by its slug, times already formatted).
Visitor input only ever goes into bodies; headers get fixed subjects and addresses that
passed email-validator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from flask import current_app
from jinja2 import StrictUndefined, TemplateError

from site_config import Checklist, load_settings


@dataclass(frozen=True)
class Mail:
    kind: str
    to: str
    subject: str
    context: dict[str, Any]  # JSON-ready: what the kind's templates need beyond the site settings
    headers: dict[str, str] = field(default_factory=dict)


# Per kind: its templates' name in templates/mail/, and whether it has an HTML part.
TEMPLATES = {
    "checklist_link": ("checklist_link", True),
    "coach_new_lead": ("coach_new_lead", False),
    "contact_to_coach": ("contact_to_coach", True),
    "contact_confirmation": ("contact_confirmation", True),
    "coach_mail_failed": ("mail_failed", False),
}
WHEN = "%d/%m/%Y %H:%M"  # how a mail shows a moment (UTC)


class RenderError(Exception):
    """A stored mail its templates cannot render (a checklist no longer in site_config, a field the
    context lacks): sending it again would not help."""


def render(kind: str, context: dict[str, Any]) -> tuple[str, str | None]:
    """The text and HTML bodies of a mail of `kind`, from its stored context. A field missing from
    the context is an error, not an empty line in a mail."""
    template, html = TEMPLATES[kind]
    settings = load_settings()
    variables = {**context, "settings": settings, "coach": settings.coach}
    env = current_app.extensions.get("leadform.mail_templates")
    if env is None:
        env = current_app.extensions["leadform.mail_templates"] = current_app.jinja_env.overlay(
            undefined=StrictUndefined)
    try:
        if "checklist" in context:
            variables["checklist"] = settings.checklist(context["checklist"])
        return (env.get_template(f"mail/{template}.txt").render(variables),
                env.get_template(f"mail/{template}.html").render(variables) if html else None)
    except (KeyError, TemplateError) as exc:
        raise RenderError(f"cannot render {kind}: {type(exc).__name__}: {exc}") from exc


def coach_address() -> str:
    return current_app.config.get("COACH_EMAIL") or load_settings().coach.email


def checklist_link(lead: object, checklist: Checklist, link: str) -> Mail:
    """`lead` needs a name and an email; it may be a lead not stored yet."""
    return Mail("checklist_link", lead.email, f"Je {checklist.title}: je persoonlijke downloadlink",
                {"lead": {"name": lead.name}, "checklist": checklist.slug, "link": link,
                 "days": load_settings().limits.link_valid_days})


def with_unsubscribe(mail: Mail) -> Mail:
    """The mail with a List-Unsubscribe header, for a lead who asked for the newsletter."""
    unsubscribe = f"<mailto:{coach_address()}?subject=uitschrijven>"
    return replace(mail, headers={**mail.headers, "List-Unsubscribe": unsubscribe})


def coach_new_lead(lead: object, checklist: Checklist) -> Mail | None:
    if not current_app.config["NOTIFY_COACH"]:
        return None
    return Mail("coach_new_lead", coach_address(), f"Nieuwe bevestigde aanvraag: {checklist.title}",
                {"checklist": checklist.slug, "lead": {
                    "name": lead.name, "email": lead.email, "newsletter": lead.newsletter_consent_at is not None,
                    "requested": lead.created_at.strftime(WHEN)}})


def contact_to_coach(message: object, subject_label: str) -> Mail:
    return Mail("contact_to_coach", coach_address(), f"Nieuw bericht via de website: {subject_label}",
                {"message": {"name": message.name, "email": message.email, "phone": message.phone,
                             "message": message.message}, "subject_label": subject_label},
                headers={"Reply-To": message.email})


def contact_confirmation(message: object) -> Mail | None:
    if not current_app.config["CONTACT_CONFIRMATION"]:
        return None
    return Mail("contact_confirmation", message.email, "We hebben je bericht goed ontvangen",
                {"message": {"name": message.name}})


def failure_report(mail: object, error: str) -> Mail:
    """`mail` is the outbox row that failed."""
    return Mail("coach_mail_failed", coach_address(), "Een e-mail van de website kon niet verstuurd worden",
                {"mail": {"kind": mail.kind, "to_addr": mail.to_addr, "subject": mail.subject,
                          "created": mail.created_at.strftime(WHEN), "attempts": mail.attempts}, "error": error})
