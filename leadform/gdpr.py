"""GDPR rights on one command each: export, erase, retention purge.

One implementation of each right, used by the CLI (`leads erase` is an alias of
`gdpr erase`), so what the privacy page promises (its retention table reads
`site_config` `retention:`) is exactly what the cron job does.

A person is found by e-mail address: their leads (and those leads' download
links and assessments, the answers kept for a personal report), the team rounds
they lead (with the round's anonymous answers), consent records a form linked to
the address, contact messages, mail to them, and mail to the coach about them
(the address in the body or Reply-To, or in the
context of a mail not sent yet, whose body is rendered from it at delivery).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from leadform import db, teams
from leadform.models import (
    Assessment,
    Base,
    ConsentRecord,
    ContactMessage,
    Download,
    Lead,
    OutboxMail,
    PageView,
    TeamAnswer,
    TeamRound,
    utcnow,
)
from site_config import load_settings

log = logging.getLogger("leadform.gdpr")
gdpr_cli = AppGroup("gdpr", help="Export or erase one person's data; purge what is past its retention.")

# Mail to the coach that carries a visitor's address in its body or headers.
ABOUT_KINDS = ("contact_to_coach", "coach_new_lead", "coach_mail_failed", "coach_new_report", "coach_team_round")
CONTACT_KINDS = ("contact_to_coach", "contact_confirmation")
NOT_EXPORTED = {"token_hash"}  # a hash of a link's secret: useless to the person, a risk in a file


def normalise(email: str) -> str:
    return email.strip().lower()


def _mentions(email: str) -> re.Pattern[str]:
    """The whole address, not a part of a longer one (a@x.be must not match ba@x.be or a@x.be.eu), and
    also at the end of a sentence ("mail a@x.be.")."""
    return re.compile(r"(?<![\w.+-])" + re.escape(email) + r"(?![\w-]|\.[\w-])", re.IGNORECASE)


def _lead_ids(s: Session, email: str) -> list[int]:
    return list(s.scalars(select(Lead.id).where(func.lower(Lead.email) == email)))


def _round_ids(s: Session, email: str) -> list[str]:
    return list(s.scalars(select(TeamRound.id).where(func.lower(TeamRound.leader_email) == email)))


def _outbox_of(s: Session, email: str, lead_ids: list[int], round_ids: list[str]) -> dict[int, OutboxMail]:
    """Mail to the person or linked to their leads or rounds, and mail to the coach that names them."""
    direct = s.scalars(select(OutboxMail).where(
        or_(func.lower(OutboxMail.to_addr) == email, OutboxMail.lead_id.in_(lead_ids),
            OutboxMail.team_round_id.in_(round_ids))))
    found = {mail.id: mail for mail in direct}
    pattern = _mentions(email)
    candidates = s.scalars(select(OutboxMail).where(OutboxMail.kind.in_(ABOUT_KINDS), or_(
        func.lower(OutboxMail.body_text).contains(email, autoescape=True),
        func.lower(OutboxMail.body_html).contains(email, autoescape=True),
    )))
    for mail in candidates:
        texts = [mail.body_text or "", mail.body_html or "", *map(str, (mail.headers or {}).values())]
        if any(pattern.search(text) for text in texts):
            found[mail.id] = mail
    # Reply-To alone (a body already blanked by the purge) still names the person, and so does the
    # context of a mail not sent yet (its bodies are rendered from it at delivery).
    for mail in s.scalars(select(OutboxMail).where(OutboxMail.kind.in_(ABOUT_KINDS))):
        if any(pattern.search(str(v)) for v in (*(mail.headers or {}).values(), *_strings(mail.context))):
            found[mail.id] = mail
    return dict(sorted(found.items()))


def _strings(value: object) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return [value] if isinstance(value, str) else []


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def as_dict(row: Base) -> dict[str, object]:
    """Every column of a row (so a column added later is exported too), JSON-ready."""
    return {attr.key: _plain(getattr(row, attr.key)) for attr in row.__mapper__.column_attrs
            if attr.key not in NOT_EXPORTED}


def export_person(s: Session, email: str) -> dict[str, object]:
    """Everything stored about one address, as one JSON-ready document (GDPR art. 15 and 20)."""
    email = normalise(email)
    leads = s.scalars(select(Lead).where(func.lower(Lead.email) == email).order_by(Lead.id)).all()
    consents = s.scalars(select(ConsentRecord).where(func.lower(ConsentRecord.email) == email)
                         .order_by(ConsentRecord.created_at)).all()
    messages = s.scalars(select(ContactMessage).where(func.lower(ContactMessage.email) == email)
                         .order_by(ContactMessage.id)).all()
    rounds = s.scalars(select(TeamRound).where(func.lower(TeamRound.leader_email) == email)
                       .order_by(TeamRound.created_at)).all()
    mails = _outbox_of(s, email, [lead.id for lead in leads], [r.id for r in rounds]).values()
    return {
        "email": email,
        "exported_at": utcnow().isoformat(timespec="seconds") + "Z",
        "leads": [{**as_dict(lead), "downloads": [as_dict(d) for d in lead.downloads],
                   "assessments": [as_dict(a) for a in lead.assessments]} for lead in leads],
        # The members' answers are anonymous and not about the leader: only how many there are.
        "team_rounds": [{**as_dict(r), "answers": teams.answer_count(s, r.id)} for r in rounds],
        "consent_records": [as_dict(c) for c in consents],
        "contact_messages": [as_dict(m) for m in messages],
        "outbox": [as_dict(m) for m in mails],
    }


def erase_person(s: Session, email: str) -> dict[str, list]:
    """Delete everything stored about one address (GDPR art. 17); returns the erased ids per table."""
    email = normalise(email)
    lead_ids = _lead_ids(s, email)
    round_ids = _round_ids(s, email)
    erased: dict[str, list] = {
        "leads": lead_ids,
        "downloads": list(s.scalars(select(Download.id).where(Download.lead_id.in_(lead_ids)))),
        "assessments": list(s.scalars(select(Assessment.id).where(Assessment.lead_id.in_(lead_ids)))),
        "contact_messages": list(s.scalars(select(ContactMessage.id)
                                           .where(func.lower(ContactMessage.email) == email))),
        "consent_records": list(s.scalars(select(ConsentRecord.id)
                                          .where(func.lower(ConsentRecord.email) == email))),
        "team_rounds": round_ids,
        "team_answers": list(s.scalars(select(TeamAnswer.id).where(TeamAnswer.round_id.in_(round_ids)))),
        "outbox": list(_outbox_of(s, email, lead_ids, round_ids)),
    }
    s.execute(delete(OutboxMail).where(OutboxMail.id.in_(erased["outbox"])))
    teams.delete_rounds(s, round_ids)
    s.execute(delete(Download).where(Download.id.in_(erased["downloads"])))
    s.execute(delete(Assessment).where(Assessment.id.in_(erased["assessments"])))
    s.execute(delete(Lead).where(Lead.id.in_(lead_ids)))
    s.execute(delete(ContactMessage).where(ContactMessage.id.in_(erased["contact_messages"])))
    s.execute(delete(ConsentRecord).where(ConsentRecord.id.in_(erased["consent_records"])))
    return erased


def remove_mail_files(outbox_ids: Iterable[int]) -> int:
    """The file mail backend keeps a copy of each mail as <id>.eml; it goes with the row's content."""
    folder = Path(current_app.config["MAIL_DIR"])
    removed = 0
    for mail_id in outbox_ids:
        path = folder / f"{mail_id:08d}.eml"
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


def years_before(moment: dt.datetime, years: int) -> dt.datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def purge(s: Session, now: dt.datetime | None = None) -> dict[str, list]:
    """Remove or blank what is past its retention period in site_config; returns the ids per kind.

    - leads never confirmed, `unconfirmed_lead_days` after their last request, with their
      download links, their assessments (report answers) and the mail that carried the link;
    - contact messages after `contact_message_years`, with the mail they caused;
    - consent records after `consent_record_years`;
    - page counts after `page_view_days`;
    - the content (bodies and headers) of delivered mail after `delivered_mail_body_days`;
    - team rounds: those whose time is up are closed first (their leader's report mail queued), then
      rounds never confirmed go after `unconfirmed_lead_days` and closed ones after `team_round_days`,
      with their answers and the mail about them.
    Failed mail keeps its content so the coach can still retry it.
    """
    now = now or utcnow()
    closed_rounds = teams.close_due(s, now)
    s.flush()
    rounds = teams.purge_rounds(s, now)
    keep = load_settings().retention
    lead_cutoff = now - dt.timedelta(days=keep.unconfirmed_lead_days)
    body_cutoff = now - dt.timedelta(days=keep.delivered_mail_body_days)
    contact_cutoff = years_before(now, keep.contact_message_years)
    consent_cutoff = years_before(now, keep.consent_record_years)

    lead_ids = list(s.scalars(select(Lead.id).where(Lead.confirmed_at.is_(None), Lead.updated_at < lead_cutoff)))
    message_ids = list(s.scalars(select(ContactMessage.id).where(ContactMessage.created_at < contact_cutoff)))
    deleted_mail = rounds["outbox"] + list(s.scalars(select(OutboxMail.id).where(or_(
        OutboxMail.lead_id.in_(lead_ids),
        (OutboxMail.kind.in_(CONTACT_KINDS)) & (OutboxMail.created_at < contact_cutoff),
    ))))
    purged: dict[str, list] = {
        "unconfirmed_leads": lead_ids,
        "downloads": list(s.scalars(select(Download.id).where(Download.lead_id.in_(lead_ids)))),
        "assessments": list(s.scalars(select(Assessment.id).where(Assessment.lead_id.in_(lead_ids)))),
        "contact_messages": message_ids,
        "consent_records": list(s.scalars(select(ConsentRecord.id)
                                          .where(ConsentRecord.created_at < consent_cutoff))),
        "page_views": list(s.scalars(select(PageView.id).where(
            PageView.day < (now - dt.timedelta(days=keep.page_view_days)).date()))),
        "team_rounds_closed": closed_rounds,
        "team_rounds": rounds["team_rounds"],
        "team_answers": rounds["team_answers"],
        "outbox_deleted": deleted_mail,
        "outbox_bodies_blanked": list(s.scalars(select(OutboxMail.id).where(
            OutboxMail.status == "sent", OutboxMail.sent_at < body_cutoff, OutboxMail.id.not_in(deleted_mail),
            or_(OutboxMail.body_text.is_not(None), OutboxMail.body_html.is_not(None),
                OutboxMail.context.is_not(None))))),
    }
    s.execute(delete(OutboxMail).where(OutboxMail.id.in_(deleted_mail)))
    s.execute(update(OutboxMail).where(OutboxMail.id.in_(purged["outbox_bodies_blanked"]))
              .values(body_text=None, body_html=None, context=None, headers={}))
    s.execute(delete(Download).where(Download.id.in_(purged["downloads"])))
    s.execute(delete(Assessment).where(Assessment.id.in_(purged["assessments"])))
    s.execute(delete(Lead).where(Lead.id.in_(lead_ids)))
    s.execute(delete(ContactMessage).where(ContactMessage.id.in_(message_ids)))
    s.execute(delete(ConsentRecord).where(ConsentRecord.id.in_(purged["consent_records"])))
    s.execute(delete(PageView).where(PageView.id.in_(purged["page_views"])))
    return purged


def _show(result: dict[str, list], verb: str) -> None:
    for table, ids in result.items():
        shown = ", ".join(map(str, ids[:20])) + (", …" if len(ids) > 20 else "")
        click.echo(f"{table}: {len(ids)} {verb}" + (f" (ids: {shown})" if ids else ""))


@gdpr_cli.command("export")
@click.argument("email")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file instead of standard output.")
def export_command(email: str, output: str | None) -> None:
    """Everything stored about EMAIL, as JSON (the answer to an access or portability request)."""
    with db.transaction() as s:
        data = export_person(s, email)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        Path(output).chmod(0o600)
    else:
        click.echo(text)
    found = sum(len(v) for v in data.values() if isinstance(v, list))
    if not found:
        click.echo("nothing stored about this address", err=True)


@click.command("erase")
@click.argument("email")
@with_appcontext
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(email: str, yes: bool) -> None:
    """Erase EMAIL everywhere (leads, download links, report answers, team rounds, contact messages, linked
    consent, mail)."""
    if not yes:
        click.confirm(f"Erase everything stored about {email}?", abort=True)
    with db.transaction() as s:
        erased = erase_person(s, email)
    files = remove_mail_files(erased["outbox"])
    if not db.forget_deleted(db.engine()):
        click.echo("warning: the database's log file could not be emptied yet; run the erase again later", err=True)
    _show(erased, "erased")
    if files:
        click.echo(f"mail files: {files} erased")
    log.info("person erased rows=%s", sum(len(ids) for ids in erased.values()))


gdpr_cli.add_command(erase_command)


class _DryRun(Exception):
    """Raised inside the purge transaction to roll it back."""


@gdpr_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Only show what would be purged.")
def purge_command(dry_run: bool) -> None:
    """Remove what is past its retention period (run daily from cron)."""
    try:
        with db.transaction() as s:
            purged = purge(s)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    files = 0 if dry_run else remove_mail_files(purged["outbox_deleted"] + purged["outbox_bodies_blanked"])
    closed = purged.pop("team_rounds_closed")
    _show(purged, "would be purged" if dry_run else "purged")
    _show({"team_rounds_closed": closed}, "would be closed" if dry_run else "closed (report mail queued)")
    if files:
        click.echo(f"mail files: {files} purged")
    if not dry_run:
        log.info("retention purge %s team_rounds_closed=%s", " ".join(f"{k}={len(v)}" for k, v in purged.items()),
                 len(closed))
