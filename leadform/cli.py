"""Commands for the coach (`flask --app leadform ...`, wrapped by `make leads` and friends).

What the coach reads is Dutch, with every moment in Belgian time (Europe/Brussels); the CSV export
opens right in Excel with Belgian settings (`;` between cells, a UTF-8 BOM so "Céline" stays
"Céline", Dutch headers) and never as formulas. The operator's commands (db, outbox send) stay English
like the logs.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select, update

from leadform import db, outbox
from leadform.forms import SUBJECTS
from leadform.gdpr import erase_command, gdpr_cli
from leadform.models import ContactMessage, Lead, OutboxMail, belgian_time, utcnow, when

leads_cli = AppGroup("leads", help="Aanvragen van de checklists.")
outbox_cli = AppGroup("outbox", help="E-mails in de wachtrij, verstuurd of mislukt.")
messages_cli = AppGroup("messages", help="Berichten via het contactformulier.")
db_cli = AppGroup("db", help="Database schema and backups.")

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def printable(value: object) -> str:
    """Visitor text for the coach's terminal: control and format characters shown as escapes, never run."""
    text = "" if value is None else str(value)
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def write_csv(rows: Iterable[dict], fields: dict[str, str]) -> None:
    """CSV for Excel in Belgium: a UTF-8 BOM, `;` between cells (the list separator there), the Dutch
    column headers of `fields` (key -> header), CRLF line ends. Nothing else goes to standard output."""
    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(fields.values())
    for row in rows:
        writer.writerow([safe_cell(row.get(f)) for f in fields])
    data = "\ufeff" + buffer.getvalue()
    if out is not None:
        out.write(data.encode("utf-8"))
        out.flush()
    else:  # click's test runner
        sys.stdout.write(data)


def _iso(value) -> str | None:
    """A moment for the JSON export: ISO 8601 in Belgian time, with its offset (+01:00 or +02:00)."""
    return belgian_time(value).isoformat(timespec="seconds") if value else None


def lead_row(lead: Lead) -> dict:
    return {"id": lead.id, "checklist": lead.checklist, "name": lead.name, "email": lead.email,
            "confirmed": _iso(lead.confirmed_at), "newsletter": _iso(lead.newsletter_consent_at),
            "requested": _iso(lead.created_at), "requests": lead.request_count}


def lead_cells(lead: Lead) -> dict:
    return {**lead_row(lead), "confirmed": when(lead.confirmed_at), "newsletter": when(lead.newsletter_consent_at),
            "requested": when(lead.created_at)}


LEAD_FIELDS = {"id": "nr", "checklist": "checklist", "name": "naam", "email": "e-mailadres",
               "requested": "aangevraagd op", "confirmed": "bevestigd op", "newsletter": "nieuwsbrief sinds",
               "requests": "aantal aanvragen"}


@leads_cli.command("list")
@click.option("--unconfirmed", is_flag=True, help="Alleen aanvragen waarvan de link nooit geopend werd.")
def leads_list(unconfirmed: bool) -> None:
    """Alle aanvragen, de nieuwste eerst (Belgische tijd)."""
    with db.transaction() as s:
        query = select(Lead).order_by(Lead.created_at.desc())
        if unconfirmed:
            query = query.where(Lead.confirmed_at.is_(None))
        leads = s.scalars(query).all()
        for lead in leads:
            state = "bevestigd" if lead.confirmed_at else "niet bevestigd"
            news = " nieuwsbrief" if lead.newsletter_consent_at else ""
            click.echo(f"{when(lead.created_at)}  {lead.checklist:<12} {state:<14}{news:<12} "
                       f"{click.style(printable(lead.name), bold=True)} <{printable(lead.email)}>")
        click.echo(f"{len(leads)} {'aanvraag' if len(leads) == 1 else 'aanvragen'} (tijden in Belgische tijd)")


@leads_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
def leads_export(fmt: str) -> None:
    """Alle aanvragen naar de standaarduitvoer: CSV voor Excel (`make export > aanvragen.csv`) of JSON."""
    with db.transaction() as s:
        leads = s.scalars(select(Lead).order_by(Lead.id)).all()
        rows = [lead_row(lead) if fmt == "json" else lead_cells(lead) for lead in leads]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        write_csv(rows, LEAD_FIELDS)


# One implementation of erasure: `leads erase` is `gdpr erase` under the name the coach knows.
leads_cli.add_command(erase_command, "erase")


STATUS = {"queued": "wacht", "sending": "bezig", "sent": "verstuurd", "failed": "mislukt"}
KINDS = {"checklist_link": "downloadlink checklist", "coach_new_lead": "melding nieuwe aanvraag",
         "contact_to_coach": "contactbericht aan jou", "contact_confirmation": "ontvangstbevestiging",
         "coach_mail_failed": "melding mislukte e-mail"}
OUTCOMES = {"sent": "verstuurd", "retry": "later opnieuw", "failed": "mislukt"}


def outcome_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {OUTCOMES.get(k, k)}" for k, v in counts.items())


@outbox_cli.command("list")
@click.option("--status", type=click.Choice(["queued", "sending", "sent", "failed"]),
              help="Alleen e-mails met deze status (queued = wacht, sent = verstuurd, failed = mislukt).")
def outbox_list(status: str | None) -> None:
    """De e-mails van de website, de nieuwste eerst (Belgische tijd)."""
    with db.transaction() as s:
        query = select(OutboxMail).order_by(OutboxMail.id.desc()).limit(200)
        if status:
            query = query.where(OutboxMail.status == status)
        mails = s.scalars(query).all()
        for mail in mails:
            click.echo(f"{mail.id:>6} {when(mail.created_at)} {STATUS.get(mail.status, mail.status):<9} "
                       f"pogingen={mail.attempts} {KINDS.get(mail.kind, mail.kind):<26} {printable(mail.to_addr)}"
                       f"  {printable(mail.last_error)}")
        click.echo(f"{len(mails)} e-mail(s) (tijden in Belgische tijd)")


@outbox_cli.command("send")
def outbox_send() -> None:
    """Deliver every mail that is due (run from cron, e.g. every minute)."""
    counts = outbox.deliver_due(limit=10_000)
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@outbox_cli.command("retry")
def outbox_retry() -> None:
    """Zet mislukte e-mails opnieuw in de wachtrij en probeer ze meteen te versturen."""
    with db.transaction() as s:
        count = s.execute(update(OutboxMail).where(OutboxMail.status == "failed")
                          .values(status="queued", attempts=0, next_attempt_at=utcnow())).rowcount
    click.echo(f"{count} mislukte e-mail(s) opnieuw in de wachtrij")
    click.echo(f"Nu verstuurd: {outcome_line(outbox.deliver_due(limit=10_000))}")


def message_row(m: ContactMessage) -> dict:
    return {"id": m.id, "received": _iso(m.created_at), "name": m.name, "email": m.email, "phone": m.phone,
            "subject": m.subject, "message": m.message}


MESSAGE_FIELDS = {"id": "nr", "received": "ontvangen op", "name": "naam", "email": "e-mailadres",
                  "phone": "telefoon", "subject": "onderwerp", "message": "bericht"}


@messages_cli.command("list")
def messages_list() -> None:
    """Berichten via het contactformulier, de nieuwste eerst (Belgische tijd)."""
    with db.transaction() as s:
        messages = s.scalars(select(ContactMessage).order_by(ContactMessage.id.desc())).all()
        for m in messages:
            first_line = m.message.splitlines()[0][:70] if m.message else ""
            click.echo(f"{when(m.created_at)}  {printable(SUBJECTS.get(m.subject, m.subject)):<26} "
                       f"{printable(m.name)} <{printable(m.email)}>  {printable(first_line)}")
        click.echo(f"{len(messages)} {'bericht' if len(messages) == 1 else 'berichten'} (tijden in Belgische tijd)")


@messages_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
def messages_export(fmt: str) -> None:
    """Alle berichten naar de standaarduitvoer: CSV voor Excel of JSON."""
    with db.transaction() as s:
        rows = [message_row(m) if fmt == "json" else {**message_row(m), "received": when(m.created_at),
                                                      "subject": SUBJECTS.get(m.subject, m.subject)}
                for m in s.scalars(select(ContactMessage).order_by(ContactMessage.id))]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        write_csv(rows, MESSAGE_FIELDS)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations: the deploy step (the app also does this when it starts, unless
    LEADFORM_MIGRATE_ON_START=false). Safe while other processes start."""
    db.upgrade(db.engine())
    click.echo("database is up to date")


@db_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(path: Path) -> None:
    """Write a consistent copy of the live database to PATH (safe while the app runs).

    SQLite: restore by stopping the app, removing the database's -wal and -shm files, copying PATH
    over the database file and starting the app. PostgreSQL (a pg_dump file): restore with
    `pg_restore --clean --if-exists --no-owner -d DATABASE_URL PATH`.
    """
    try:
        counts = db.backup(db.engine(), path)
    except subprocess.CalledProcessError as exc:
        raise click.ClickException(f"pg_dump failed: {exc.stderr.strip()}") from None
    except (ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    if counts is None:
        click.echo(f"backup written to {path} ({path.stat().st_size} bytes, pg_dump custom format)")
        return
    click.echo(f"backup written to {path} ({path.stat().st_size} bytes, integrity ok)")
    for table, count in counts.items():
        click.echo(f"  {table}: {count} rows")


def init_app(app: Flask) -> None:
    for group in (leads_cli, outbox_cli, messages_cli, db_cli, gdpr_cli):
        app.cli.add_command(group)
