"""The checklist request's writes: the lead, its download link and the link's mail.

These run inside the database's write lock, so they are Core statements with bound parameters,
built once at import: no ORM unit of work and no SQL expression built per request. The request
runs them on the DBAPI connection (leadform/direct_sql.py); the rarer paths (a renewed link) on
their ORM session. Everything else a request needs (the form, the link's token) is
done before the lock; the mail is rendered later, when the outbox sends it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, func, insert, select, update

from leadform import links, mails, outbox
from leadform.models import Download, Lead, OutboxMail, utcnow
from leadform.outbox import Target
from site_config import load_settings

FIND_LEAD = select(Lead.id, Lead.newsletter_requested).where(
    Lead.checklist == bindparam("checklist"), Lead.email == bindparam("email"))
INSERT_LEAD = insert(Lead.__table__).returning(Lead.id)
UPDATE_LEAD = update(Lead.__table__).where(Lead.id == bindparam("lead_id")).values(
    name=bindparam("name"), newsletter_requested=bindparam("newsletter"), request_count=Lead.request_count + 1,
    updated_at=bindparam("now"))
MAILS_SINCE = select(func.count()).select_from(OutboxMail).where(
    OutboxMail.to_addr == bindparam("email"), OutboxMail.kind == "checklist_link",
    OutboxMail.created_at >= bindparam("since"))
INSERT_DOWNLOAD = insert(Download.__table__)


def save_lead(target: Target, checklist: str, email: str, name: str, newsletter: bool) -> tuple[int, bool, bool]:
    """Insert the lead, or update the one that asked for this checklist before.
    Returns its id, whether it is new, and its newsletter wish (once asked, it stays asked)."""
    row = target.execute(FIND_LEAD, {"checklist": checklist, "email": email}).first()
    now = utcnow()
    if row is None:
        lead_id = target.execute(INSERT_LEAD, {
            "checklist": checklist, "email": email, "name": name, "newsletter_requested": newsletter,
            "created_at": now, "updated_at": now, "request_count": 1}).scalar()
        return lead_id, True, newsletter
    lead_id, asked_before = row
    newsletter = newsletter or bool(asked_before)
    target.execute(UPDATE_LEAD, {"lead_id": lead_id, "name": name, "newsletter": newsletter, "now": now})
    return lead_id, False, newsletter


def mails_today(target: Target, email: str) -> int:
    return target.execute(MAILS_SINCE, {"email": email, "since": utcnow() - dt.timedelta(days=1)}).scalar() or 0


def queue_link(target: Target, lead_id: int, email: str, newsletter: bool, secret: str, mail: mails.Mail) -> bool:
    """Store the link and queue its mail, unless the address had its mails for today."""
    if mails_today(target, email) >= load_settings().limits.mails_per_address_per_day:
        return False
    target.execute(INSERT_DOWNLOAD, {"lead_id": lead_id, "token_hash": links.hash_secret(secret),
                                     "created_at": utcnow(), "expires_at": links.expires_at(), "use_count": 0})
    outbox.queue(target, mails.with_unsubscribe(mail) if newsletter else mail, lead_id=lead_id)
    return True
