"""Commands for the coach (`flask --app leadform ...`, wrapped by `make leads` and friends).

Output is for a person: plain tables, Dutch-free English like the code, and CSV
that a spreadsheet cannot mistake for formulas.
"""

from __future__ import annotations

import csv
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
from leadform.gdpr import erase_command, gdpr_cli
from leadform.models import ContactMessage, Lead, OutboxMail, utcnow

leads_cli = AppGroup("leads", help="Checklist requests.")
outbox_cli = AppGroup("outbox", help="Queued, sent and failed mail.")
messages_cli = AppGroup("messages", help="Contact form messages.")
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


def write_csv(rows: Iterable[dict], fields: list[str]) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([safe_cell(row.get(f)) for f in fields])


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def lead_row(lead: Lead) -> dict:
    return {"id": lead.id, "checklist": lead.checklist, "name": lead.name, "email": lead.email,
            "confirmed": _iso(lead.confirmed_at), "newsletter": _iso(lead.newsletter_consent_at),
            "requested": _iso(lead.created_at), "requests": lead.request_count}


LEAD_FIELDS = ["id", "checklist", "name", "email", "confirmed", "newsletter", "requested", "requests"]


@leads_cli.command("list")
@click.option("--unconfirmed", is_flag=True, help="Only leads that never opened their link.")
def leads_list(unconfirmed: bool) -> None:
    """List leads, newest first."""
    with db.transaction() as s:
        query = select(Lead).order_by(Lead.created_at.desc())
        if unconfirmed:
            query = query.where(Lead.confirmed_at.is_(None))
        leads = s.scalars(query).all()
        for lead in leads:
            state = "confirmed" if lead.confirmed_at else "unconfirmed"
            news = " newsletter" if lead.newsletter_consent_at else ""
            click.echo(f"{lead.created_at:%Y-%m-%d %H:%M}  {lead.checklist:<12} {state:<11}{news:<11} "
                       f"{click.style(printable(lead.name), bold=True)} <{printable(lead.email)}>")
        click.echo(f"{len(leads)} lead(s)")


@leads_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
def leads_export(fmt: str) -> None:
    """Export all leads to standard output."""
    with db.transaction() as s:
        rows = [lead_row(lead) for lead in s.scalars(select(Lead).order_by(Lead.id))]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        write_csv(rows, LEAD_FIELDS)


# One implementation of erasure: `leads erase` is `gdpr erase` under the name the coach knows.
leads_cli.add_command(erase_command, "erase")


@outbox_cli.command("list")
@click.option("--status", type=click.Choice(["queued", "sending", "sent", "failed"]))
def outbox_list(status: str | None) -> None:
    """Show the outbox, newest first."""
    with db.transaction() as s:
        query = select(OutboxMail).order_by(OutboxMail.id.desc()).limit(200)
        if status:
            query = query.where(OutboxMail.status == status)
        for mail in s.scalars(query):
            click.echo(f"{mail.id:>6} {mail.created_at:%Y-%m-%d %H:%M} {mail.status:<8} tries={mail.attempts} "
                       f"{mail.kind:<22} {printable(mail.to_addr)}  {printable(mail.last_error)}")


@outbox_cli.command("send")
def outbox_send() -> None:
    """Deliver every mail that is due (run from cron, e.g. every minute)."""
    counts = outbox.deliver_due(limit=10_000)
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@outbox_cli.command("retry")
def outbox_retry() -> None:
    """Put failed mail back in the queue, then try to deliver it now."""
    with db.transaction() as s:
        count = s.execute(update(OutboxMail).where(OutboxMail.status == "failed")
                          .values(status="queued", attempts=0, next_attempt_at=utcnow())).rowcount
    click.echo(f"{count} mail(s) queued again")
    counts = outbox.deliver_due(limit=10_000)
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


def message_row(m: ContactMessage) -> dict:
    return {"id": m.id, "received": _iso(m.created_at), "name": m.name, "email": m.email, "phone": m.phone,
            "subject": m.subject, "message": m.message}


MESSAGE_FIELDS = ["id", "received", "name", "email", "phone", "subject", "message"]


@messages_cli.command("list")
def messages_list() -> None:
    """Contact messages, newest first."""
    with db.transaction() as s:
        for m in s.scalars(select(ContactMessage).order_by(ContactMessage.id.desc())):
            first_line = m.message.splitlines()[0][:70] if m.message else ""
            click.echo(f"{m.created_at:%Y-%m-%d %H:%M}  {printable(m.subject):<26} {printable(m.name)} "
                       f"<{printable(m.email)}>  {printable(first_line)}")


@messages_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
def messages_export(fmt: str) -> None:
    """Export all contact messages to standard output."""
    with db.transaction() as s:
        rows = [message_row(m) for m in s.scalars(select(ContactMessage).order_by(ContactMessage.id))]
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
