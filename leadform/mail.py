"""Mail: what each one says, and where it goes.

A request composes its mail (`Mail`: the facts it needs, JSON-ready) and the outbox stores it in
the same transaction; the templates (HTML autoescaped) render it when it is sent. Visitor input
only ever goes into bodies; headers get fixed subjects and addresses that passed email-validator.
A backend writes .eml files (the embedded default) or talks SMTP, and raises `TemporaryFailure`
(try again later) or `PermanentFailure` (give up); the outbox decides what to do with each.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from jinja2 import StrictUndefined, TemplateError

from leadform.models import when
from site_config import Checklist, load_settings

log = logging.getLogger("leadform.mail")


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
    "coach_mail_held": ("mail_held", False),
    "team_round_link": ("team_round_link", True),
    "team_report_ready": ("team_report_ready", True),
    "coach_team_round": ("coach_team_round", False),
    "scorecard_report": ("scorecard_report", True),
    "coach_new_report": ("coach_new_report", False),
}
# Mails to a visitor's address, which nobody has to have confirmed: they count against the address's
# daily limit and the site's hourly and daily caps, and carry no free text from the request.
VISITOR_KINDS = ("checklist_link", "contact_confirmation", "scorecard_report", "team_round_link")


# -- addresses -----------------------------------------------------------------------------------------

# Providers known to deliver a.n@gmail.com and an@gmail.com to one mailbox, and their other domain names.
DOTLESS_DOMAINS = frozenset({"gmail.com"})
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}


def header_address(address: str) -> str:
    """The address as the To: header and the SMTP envelope carry it: the domain in its ASCII (IDNA)
    form, so no server needs SMTPUTF8 (forms.py refuses local parts outside ASCII). Raises ValueError
    for an address a mail program would read as another one: an encoded word (=?utf-8?q?…?=) in the
    local part decodes to someone else, or to a line break, in the To: header."""
    valid = validate_email(address, check_deliverability=False)
    written = f"{valid.local_part}@{valid.ascii_domain}"
    if "=?" in valid.local_part:
        raise ValueError("encoded word in the local part")
    message = EmailMessage()
    try:
        message["To"] = written
        parsed = [a.addr_spec for a in message_from_bytes(bytes(message), policy=default)["To"].addresses]
    except (ValueError, TypeError, IndexError, AttributeError):
        parsed = []
    if parsed != [written]:
        raise ValueError("the To: header reads back as another address")
    return written


def mailbox(address: str) -> str:
    """One spelling for every way of writing one mailbox, for counting mails: lower case, the tag after
    '+' dropped, dots dropped where the provider ignores them, the domain's Unicode and punycode forms
    one (email-validator's normalised form). The address stored and mailed stays as typed."""
    try:
        valid = validate_email(address, check_deliverability=False)
        local, domain = valid.local_part.lower(), valid.ascii_domain.lower()
    except EmailNotValidError:  # stored before these rules: count it as written
        local, _, domain = address.strip().lower().rpartition("@")
    domain = DOMAIN_ALIASES.get(domain, domain)
    local = local.split("+", 1)[0]
    if domain in DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


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


def to_visitor() -> dict[str, str]:
    """The headers of every mail to a visitor: an answer goes to the coach, not to no-reply@. The
    address is the coach's own (site.yml or LEADFORM_COACH_EMAIL), never anything a visitor typed."""
    return {"Reply-To": coach_address()}


def checklist_link(lead: Any, checklist: Checklist, link: str) -> Mail:
    """`lead` needs an email; it may be a lead not stored yet. The name the form asked for is not in
    it: the address has not been confirmed, and a name is free text anyone can type ("Je bank: …")."""
    return Mail("checklist_link", lead.email, f"Je {checklist.title}: je persoonlijke downloadlink",
                {"checklist": checklist.slug, "link": link,
                 "days": load_settings().limits.link_valid_days}, headers=to_visitor())


def scorecard_report(name: str, email: str, checklist: Checklist, link: str) -> Mail:
    """The link to a personal report of a checklist's self-assessment (leadform/scorecards.py)."""
    return Mail("scorecard_report", email, f"Je persoonlijk rapport: {checklist.title}",
                {"checklist": checklist.slug, "link": link,  # no name: the address is not confirmed yet
                 "days": load_settings().limits.link_valid_days}, headers=to_visitor())


def with_unsubscribe(mail: Mail) -> Mail:
    """The mail with a List-Unsubscribe header, for a lead who asked for the newsletter."""
    unsubscribe = f"<mailto:{coach_address()}?subject=uitschrijven>"
    return replace(mail, headers={**mail.headers, "List-Unsubscribe": unsubscribe})


def coach_new_lead(lead: Any, checklist: Checklist) -> Mail | None:
    if not current_app.config["NOTIFY_COACH"]:
        return None
    return Mail("coach_new_lead", coach_address(), f"Nieuwe bevestigde aanvraag: {checklist.title}",
                {"checklist": checklist.slug, "lead": {
                    "name": lead.name, "email": lead.email, "newsletter": lead.newsletter_consent_at is not None,
                    "requested": when(lead.created_at)}})


def coach_new_report(lead: Any, result: Any, asked_at: Any) -> Mail | None:
    """The coach learns a prospect's scores once they confirmed by downloading their report
    (`result` is a leadform.scoring.Result)."""
    if not current_app.config["NOTIFY_COACH"]:
        return None
    checklist = result.checklist
    return Mail("coach_new_report", coach_address(), f"Nieuw persoonlijk rapport: {checklist.title}",
                {"checklist": checklist.slug, "lead": {"name": lead.name, "email": lead.email,
                                                       "requested": when(asked_at)},
                 "themes": [{"title": t.title, "average": t.average_text, "level": t.level_label}
                            for t in result.themes],
                 "weakest": result.weakest.title, "even": result.even})


MOMENT_LABEL = "Voorkeur voor een gesprek"  # a moment suggested in the contact form, kept with the message


def contact_to_coach(message: Any, subject_label: str, moment: str | None = None) -> Mail:
    """The visitor's message to the coach; a suggested moment stands on a line of its own, above it."""
    text = message.message.removesuffix(f"\n\n{MOMENT_LABEL}: {moment}") if moment else message.message
    return Mail("contact_to_coach", coach_address(), f"Nieuw bericht via de website: {subject_label}",
                {"message": {"name": message.name, "email": message.email, "phone": message.phone,
                             "message": text, "moment": moment or None}, "subject_label": subject_label},
                headers={"Reply-To": message.email})


def contact_confirmation(message: Any) -> Mail | None:
    if not current_app.config["CONTACT_CONFIRMATION"]:
        return None
    # Neither the name nor the message: the address may belong to someone else than the sender.
    return Mail("contact_confirmation", message.email, "We hebben je bericht goed ontvangen", {},
                headers=to_visitor())


def team_round_link(leader: Any, checklist: Checklist, link: str) -> Mail:
    """The leader's link: opening it confirms the address and starts the round (double opt-in)."""
    settings = load_settings()
    return Mail("team_round_link", leader.email, f"Bevestig je teamronde met de {checklist.title}",
                {"checklist": checklist.slug, "link": link,  # no name: the address is not confirmed yet
                 "open_days": settings.limits.team_round_open_days}, headers=to_visitor())


def team_report_ready(team_round: Any, checklist: Checklist, link: str, answers: int, minimum: int) -> Mail:
    """Sent when a round closes: the link to its report, or why there is none."""
    settings = load_settings()
    return Mail("team_report_ready", team_round.leader_email, f"Je teamronde met de {checklist.title} is afgesloten",
                {"leader": {"name": team_round.leader_name}, "checklist": checklist.slug, "link": link,
                 "answers": answers, "minimum": minimum, "kept_days": settings.retention.team_round_days},
                headers=to_visitor())


def coach_team_round(team_round: Any, checklist: Checklist) -> Mail | None:
    """The coach hears of each round a leader starts (on confirmation), as of each confirmed lead."""
    if not current_app.config["NOTIFY_COACH"]:
        return None
    return Mail("coach_team_round", coach_address(), f"Nieuwe teamronde gestart: {checklist.title}",
                {"checklist": checklist.slug, "leader": {"name": team_round.leader_name,
                                                         "email": team_round.leader_email},
                 "closes": when(team_round.closes_at)})


def failure_report(mail: Any, error: str) -> Mail:
    """`mail` is the outbox row that failed."""
    return Mail("coach_mail_failed", coach_address(), "Een e-mail van de website kon niet verstuurd worden",
                {"mail": {"kind": mail.kind, "to_addr": mail.to_addr, "subject": mail.subject,
                          "created": when(mail.created_at), "attempts": mail.attempts}, "error": error})


def caps_reached(hour: int, day: int, waiting: int) -> Mail:
    """The one alert a day when visitor mail waits for the site's hourly or daily cap."""
    limits = load_settings().limits
    return Mail("coach_mail_held", coach_address(), "De website houdt e-mails aan bezoekers even tegen",
                {"hour": hour, "day": day, "waiting": waiting, "per_hour": limits.visitor_mails_per_hour,
                 "per_day": limits.visitor_mails_per_day})


# -- backends ------------------------------------------------------------------------------------------

LINK = re.compile(r"https?://\S+/download/\S+")


class TemporaryFailure(Exception):
    """The server may accept it later: 4xx, refused connection, timeout."""


class PermanentFailure(Exception):
    """The server refused it for good: 5xx."""


class FileBackend:
    """Writes each mail as an .eml file; prints download links so `make run` needs no mail server."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def send(self, message: EmailMessage, outbox_id: int) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"{outbox_id:08d}.eml"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds a live download link
        with os.fdopen(fd, "wb") as handle:
            handle.write(bytes(message))
        tmp.replace(path)
        text = message.get_body(("plain",))
        for link in LINK.findall(text.get_content() if text else ""):
            print(f"[mail {outbox_id}] download link: {link}", flush=True)
        log.info("mail written outbox_id=%s file=%s", outbox_id, path.name)

    def close(self) -> None:
        """Nothing to end: each mail is its own file."""


class SMTPBackend:
    """Sends over one SMTP connection per delivery pass (`close` ends it): a burst of leads costs the mail
    server one login and the pass one handshake, not one per mail. Any error drops the connection, so
    the next mail starts on a clean one."""

    def __init__(self, host: str, port: int, security: str, user: str | None, password: str | None,
                 timeout: float) -> None:
        self.host, self.port, self.security = host, port, security
        self.user, self.password, self.timeout = user, password, timeout
        self.smtp: smtplib.SMTP | None = None
        self.reused = False

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage, outbox_id: int) -> None:
        try:
            try:
                refused = self._send(message)
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPSenderRefused) as exc:
                # A connection kept from the previous mail may have been closed by the server since
                # (idle time, a limit of mails per connection: "421" to MAIL FROM): once on a new one.
                if not self.reused or getattr(exc, "smtp_code", 421) != 421:
                    raise
                self.close()
                refused = self._send(message)
        except smtplib.SMTPRecipientsRefused as exc:  # smtplib has reset the session: it stays usable
            codes = [code for code, _ in exc.recipients.values()]
            raise _by_code(min(codes), "recipient refused") from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise _by_code(exc.smtp_code, exc.smtp_error.decode("utf-8", "replace")[:200]) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            self.close()
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}"[:300]) from None
        if refused:
            raise _by_code(min(code for code, _ in refused.values()), "recipient refused")
        log.info("mail sent outbox_id=%s", outbox_id)

    def _send(self, message: EmailMessage) -> dict:
        self.reused = self.smtp is not None
        if self.smtp is None:
            self.smtp = self._connect()
        return self.smtp.send_message(message)

    def close(self) -> None:
        """End the connection politely; a server that already hung up is no error."""
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _by_code(code: int, text: str) -> Exception:
    if 400 <= code < 500:
        return TemporaryFailure(f"{code} {text}")
    return PermanentFailure(f"{code} {text}")


def from_config(config: dict) -> FileBackend | SMTPBackend:
    if config["MAIL_BACKEND"] == "smtp":
        return SMTPBackend(config["SMTP_HOST"], int(config["SMTP_PORT"]), config["SMTP_SECURITY"],
                           config["SMTP_USER"], config["SMTP_PASSWORD"], float(config["SMTP_TIMEOUT"]))
    if config["MAIL_BACKEND"] == "file":
        return FileBackend(config["MAIL_DIR"])
    raise RuntimeError(f"LEADFORM_MAIL_BACKEND must be 'file' or 'smtp', not {config['MAIL_BACKEND']!r}")
