"""The checklist request's writes: the lead, its download link and the link's mail.

These run inside the database's write lock, so they are prepared Core statements with bound
parameters, built once at import: no ORM unit of work and no SQL expression built per request.
Everything else a request needs (the form, the token, the rendered mail) is done before the lock.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from leadform import links, mails, outbox
from leadform.models import Download, Lead, OutboxMail, utcnow
from site_config import load_settings

FIND_LEAD = select(Lead.id, Lead.newsletter_requested).where(
    Lead.checklist == bindparam("checklist"), Lead.email == bindparam("email"))
INSERT_LEAD = insert(Lead.__table__)
UPDATE_LEAD = update(Lead.__table__).where(Lead.id == bindparam("lead_id")).values(
    name=bindparam("name"), newsletter_requested=bindparam("newsletter"), request_count=Lead.request_count + 1)
MAILS_SINCE = select(func.count()).select_from(OutboxMail).where(
    OutboxMail.to_addr == bindparam("email"), OutboxMail.kind == "checklist_link",
    OutboxMail.created_at >= bindparam("since"))
INSERT_DOWNLOAD = insert(Download.__table__)


def save_lead(conn: Connection, checklist: str, email: str, name: str, newsletter: bool) -> tuple[int, bool, bool]:
    """Insert the lead, or update the one that asked for this checklist before.
    Returns its id, whether it is new, and its newsletter wish (once asked, it stays asked)."""
    row = conn.execute(FIND_LEAD, {"checklist": checklist, "email": email}).first()
    if row is None:
        result = conn.execute(INSERT_LEAD, {"checklist": checklist, "email": email, "name": name,
                                            "newsletter_requested": newsletter})
        return result.inserted_primary_key[0], True, newsletter
    newsletter = newsletter or row.newsletter_requested
    conn.execute(UPDATE_LEAD, {"lead_id": row.id, "name": name, "newsletter": newsletter})
    return row.id, False, newsletter


def mails_today(target: Session | Connection, email: str) -> int:
    return target.scalar(MAILS_SINCE, {"email": email, "since": utcnow() - dt.timedelta(days=1)}) or 0


def queue_link(target: Session | Connection, lead_id: int, email: str, newsletter: bool, secret: str,
               mail: mails.Mail) -> bool:
    """Store the link and queue its mail, unless the address had its mails for today."""
    if mails_today(target, email) >= load_settings().limits.mails_per_address_per_day:
        return False
    target.execute(INSERT_DOWNLOAD, {"lead_id": lead_id, "token_hash": links.hash_secret(secret),
                                     "expires_at": links.expires_at()})
    outbox.queue(target, mails.with_unsubscribe(mail) if newsletter else mail, lead_id=lead_id)
    return True
