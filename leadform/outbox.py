"""The outbox: mail is queued in the same transaction as the lead or message that causes it,
then delivered after commit, so a mail server that is down or slow loses nothing and
never makes a visitor wait.

Delivery claims one row at a time with a conditional UPDATE, so several workers (or
the cron command beside them) never send the same mail twice. A row left in
'sending' by a crash is taken up again after OUTBOX_LEASE_SECONDS.
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
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from leadform import db
from leadform.mail_backends import PermanentFailure, TemporaryFailure, from_config
from leadform.models import OutboxMail, utcnow

log = logging.getLogger("leadform.outbox")
MAX_BACKOFF = 3600


def queue(session: Session, *, kind: str, to: str, subject: str, text: str, html: str | None = None,
          headers: dict[str, str] | None = None, lead_id: int | None = None) -> OutboxMail:
    """Add a mail to the caller's transaction; nothing is sent until that transaction commits."""
    domain = current_app.config["MAIL_FROM"].rsplit("@", 1)[-1]
    mail = OutboxMail(kind=kind, to_addr=to, subject=subject, body_text=text, body_html=html,
                      headers=headers or {}, message_id=make_msgid(domain=domain), lead_id=lead_id)
    session.add(mail)
    return mail


def build_message(mail: OutboxMail, sender: str) -> EmailMessage:
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


def _claim(now: dt.datetime, tried: set[int]) -> OutboxMail | None:
    lease = int(current_app.config["OUTBOX_LEASE_SECONDS"])
    with db.transaction() as s:
        query = select(OutboxMail).where(_due(now, lease), OutboxMail.id.not_in(tried))
        mail = s.scalars(query.order_by(OutboxMail.id).limit(1)).first()
        if mail is None:
            return None
        claimed = s.execute(
            update(OutboxMail)
            .where(OutboxMail.id == mail.id, OutboxMail.status == mail.status,
                   OutboxMail.attempts == mail.attempts)
            # The lease starts now, not at `now`: the lock may have taken a while to get (busy timeout).
            .values(status="sending", claimed_at=utcnow(), attempts=OutboxMail.attempts + 1)
        ).rowcount
        if claimed != 1:
            return None
        s.refresh(mail)
        s.expunge(mail)
        return mail


def _finish(mail_id: int, **values: object) -> None:
    with db.transaction() as s:
        s.execute(update(OutboxMail).where(OutboxMail.id == mail_id, OutboxMail.status == "sending")
                  .values(**values))


PASS_SIZE = 100  # mails per pass (of the background thread: between two looks at its wake-up call)


def deliver_due(limit: int = PASS_SIZE) -> dict[str, int]:
    """Send what is due now; returns counts per outcome. Safe to run from several processes."""
    config = current_app.config
    backend = from_config(config)
    counts = {"sent": 0, "retry": 0, "failed": 0}
    tried: set[int] = set()  # each mail at most once per pass, whatever its backoff
    for _ in range(limit):
        now = utcnow()
        mail = _claim(now, tried)
        if mail is None:
            break
        tried.add(mail.id)
        try:
            backend.send(build_message(mail, config["MAIL_FROM"]), mail.id)
        except TemporaryFailure as exc:
            if mail.attempts >= int(config["OUTBOX_MAX_ATTEMPTS"]):
                _fail(mail, f"gave up after {mail.attempts} attempts: {exc}")
                counts["failed"] += 1
                continue
            delay = min(int(config["OUTBOX_BACKOFF_SECONDS"]) * 2 ** (mail.attempts - 1), MAX_BACKOFF)
            _finish(mail.id, status="queued", next_attempt_at=now + dt.timedelta(seconds=delay),
                    last_error=str(exc)[:500])
            log.warning("mail deferred outbox_id=%s attempt=%s retry_in=%ss reason=%s",
                        mail.id, mail.attempts, delay, _reason(exc))
            counts["retry"] += 1
            continue
        except PermanentFailure as exc:
            _fail(mail, str(exc))
            counts["failed"] += 1
            continue
        _finish(mail.id, status="sent", sent_at=utcnow(), last_error=None)
        counts["sent"] += 1
    return counts


REASON = re.compile(r"\d{3}(?: \d\.\d{1,3}\.\d{1,3})?|[A-Za-z]\w*")


def _reason(exc: Exception) -> str:
    """The SMTP code or the error's name, never the rest: servers quote the recipient's address there."""
    match = REASON.match(str(exc))
    return match.group(0) if match else type(exc).__name__


def _fail(mail: OutboxMail, error: str) -> None:
    """Mark failed and tell the coach, unless the failed mail was itself for the coach."""
    from leadform import mails

    with db.transaction() as s:
        s.execute(update(OutboxMail).where(OutboxMail.id == mail.id, OutboxMail.status == "sending")
                  .values(status="failed", last_error=error[:500]))
        if mail.kind != "coach_mail_failed":
            mails.queue_failure_report(s, mail, error)
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
