"""The outbox: mail is queued in the same transaction as the lead or message that causes it,
then delivered after commit, so a mail server that is down or slow loses nothing and
never makes a visitor wait.

Delivery claims due rows (up to CLAIM_BATCH in one transaction) with a conditional UPDATE,
so several workers (or the cron command beside them) never send the same mail twice, and
marks each one sent in its own transaction. A row left in 'sending' by a crash is taken up
again after OUTBOX_LEASE_SECONDS.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from flask import Flask, current_app
from sqlalchemy import Connection, Row, and_, insert, or_, select, update
from sqlalchemy.orm import Session

from leadform import db, mails
from leadform.mail_backends import FileBackend, PermanentFailure, SMTPBackend, TemporaryFailure, from_config
from leadform.models import OutboxMail, utcnow

log = logging.getLogger("leadform.outbox")
MAX_BACKOFF = 3600


INSERT_MAIL = insert(OutboxMail.__table__)  # Core: the ORM's unit of work cost more than the row


def queue(target: Session | Connection, mail: mails.Mail, lead_id: int | None = None) -> None:
    """Add a composed mail to the caller's transaction; nothing is sent until that transaction commits."""
    domain = current_app.config["MAIL_FROM"].rsplit("@", 1)[-1]
    target.execute(INSERT_MAIL, {"kind": mail.kind, "to_addr": mail.to, "subject": mail.subject,
                                 "body_text": mail.text, "body_html": mail.html, "headers": mail.headers,
                                 "message_id": make_msgid(domain=domain), "lead_id": lead_id})


def build_message(mail: Row, sender: str) -> EmailMessage:
    """The MIME message; EmailMessage refuses CR/LF in any header, so nothing can be injected."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to_addr
    message["Subject"] = mail.subject
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(mail.created_at.replace(tzinfo=dt.UTC))
    for name, value in (mail.headers or {}).items():
        message[name] = value
    message.set_content(mail.body_text or "")
    if mail.body_html:
        message.add_alternative(mail.body_html, subtype="html")
    return message


def _due(now: dt.datetime, lease: int):
    return or_(
        and_(OutboxMail.status == "queued", OutboxMail.next_attempt_at <= now),
        and_(OutboxMail.status == "sending", OutboxMail.claimed_at < now - dt.timedelta(seconds=lease)),
    )


def _claim(now: dt.datetime, tried: set[int], size: int) -> list[Row]:
    """Up to `size` due mails, marked 'sending' in one transaction (one commit for the batch).

    The outer WHERE repeats the due condition: on PostgreSQL a second claimer that waited for
    the row lock re-checks it against the new row and skips what the first one took."""
    lease = int(current_app.config["OUTBOX_LEASE_SECONDS"])
    due = select(OutboxMail.id).where(_due(now, lease), OutboxMail.id.not_in(tried)) \
        .order_by(OutboxMail.id).limit(size)
    claim = (update(OutboxMail).where(OutboxMail.id.in_(due.scalar_subquery()), _due(now, lease))
             # The lease starts now, not at `now`: the lock may have taken a while to get.
             .values(status="sending", claimed_at=utcnow(), attempts=OutboxMail.attempts + 1)
             .returning(*OutboxMail.__table__.c))
    with db.engine().begin() as conn:
        return sorted(conn.execute(claim).all(), key=lambda row: row.id)


def _finish(mail_id: int, **values: object) -> None:
    with db.engine().begin() as conn:
        conn.execute(update(OutboxMail).where(OutboxMail.id == mail_id, OutboxMail.status == "sending")
                     .values(**values))


PASS_SIZE = 100  # mails per pass (of the background thread: between two looks at its wake-up call)
# Mails claimed per transaction. Their lease runs while the ones before them are sent: 10 mails at
# SMTP_TIMEOUT (10 s) each stay well within OUTBOX_LEASE_SECONDS (300 s); after a crash, what was
# claimed and not yet sent waits for that lease, as a single claimed mail did.
CLAIM_BATCH = 10


def deliver_due(limit: int = PASS_SIZE) -> dict[str, int]:
    """Send what is due now; returns counts per outcome. Safe to run from several processes."""
    config = current_app.config
    backend = from_config(config)
    counts = {"sent": 0, "retry": 0, "failed": 0}
    tried: set[int] = set()  # each mail at most once per pass, whatever its backoff
    while len(tried) < limit:
        now = utcnow()
        batch = _claim(now, tried, min(CLAIM_BATCH, limit - len(tried)))
        if not batch:
            break
        for mail in batch:
            tried.add(mail.id)
            counts[_deliver(backend, mail, now, config)] += 1
    return counts


def _deliver(backend: FileBackend | SMTPBackend, mail: Row, now: dt.datetime, config: dict) -> str:
    """Send one claimed mail and record the outcome in its own transaction: after a crash at most
    this one mail is sent twice, never one lost."""
    try:
        backend.send(build_message(mail, config["MAIL_FROM"]), mail.id)
    except TemporaryFailure as exc:
        if mail.attempts >= int(config["OUTBOX_MAX_ATTEMPTS"]):
            _fail(mail, f"gave up after {mail.attempts} attempts: {exc}")
            return "failed"
        delay = min(int(config["OUTBOX_BACKOFF_SECONDS"]) * 2 ** (mail.attempts - 1), MAX_BACKOFF)
        _finish(mail.id, status="queued", next_attempt_at=now + dt.timedelta(seconds=delay),
                last_error=str(exc)[:500])
        log.warning("mail deferred outbox_id=%s attempt=%s retry_in=%ss reason=%s",
                    mail.id, mail.attempts, delay, _reason(exc))
        return "retry"
    except PermanentFailure as exc:
        _fail(mail, str(exc))
        return "failed"
    _finish(mail.id, status="sent", sent_at=utcnow(), last_error=None)
    return "sent"


REASON = re.compile(r"\d{3}(?: \d\.\d{1,3}\.\d{1,3})?|[A-Za-z]\w*")


def _reason(exc: Exception) -> str:
    """The SMTP code or the error's name, never the rest: servers quote the recipient's address there."""
    match = REASON.match(str(exc))
    return match.group(0) if match else type(exc).__name__


def _fail(mail: Row, error: str) -> None:
    """Mark failed and tell the coach, unless the failed mail was itself for the coach."""
    with db.transaction() as s:
        s.execute(update(OutboxMail).where(OutboxMail.id == mail.id, OutboxMail.status == "sending")
                  .values(status="failed", last_error=error[:500]))
        if mail.kind != "coach_mail_failed":
            queue(s, mails.failure_report(mail, error))
    log.error("mail failed outbox_id=%s kind=%s reason=%s", mail.id, mail.kind, error.split(" ", 1)[0][:20])


# -- delivery after commit, in the background --------------------------------------------------------------

class _Worker:
    """One daemon thread per process that delivers after each commit and retries when due."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.wake = threading.Event()
        self.pid: int | None = None
        self.lock = threading.Lock()

    def kick(self) -> None:
        with self.lock:
            if self.pid != os.getpid():  # first use in this process (gunicorn forks after import)
                self.pid = os.getpid()
                threading.Thread(target=self._run, name="leadform-outbox", daemon=True).start()
        self.wake.set()

    def _run(self) -> None:
        while True:
            self.wake.wait(timeout=float(self.app.config.get("OUTBOX_POLL_SECONDS", 30)))
            self.wake.clear()
            try:
                with self.app.app_context():
                    counts = deliver_due(PASS_SIZE)
                if sum(counts.values()) >= PASS_SIZE:  # a burst left more: go on without waiting
                    self.wake.set()
            except Exception:  # keep the thread alive; the cron command is the safety net
                log.exception("outbox worker error")


def init_app(app: Flask) -> None:
    app.extensions["leadform.outbox"] = _Worker(app)


def kick() -> None:
    """Call after a commit that queued mail."""
    if current_app.config["OUTBOX_THREAD"]:
        current_app.extensions["leadform.outbox"].kick()
