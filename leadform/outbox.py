"""The outbox: mail is queued in the same transaction as the lead or message that causes it,
then delivered after commit, so a mail server that is down or slow loses nothing and
never makes a visitor wait.

Delivery claims due rows (up to CLAIM_BATCH in one transaction) with a conditional UPDATE,
so several workers (or the cron command beside them) never send the same mail twice, and
marks each one sent in its own transaction. A row left in 'sending' by a crash is taken up
again after OUTBOX_LEASE_SECONDS.
"""

from __future__ import annotations

import atexit
import datetime as dt
import hashlib
import logging
import os
import re
import threading
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from flask import Flask, current_app
from sqlalchemy import Row, and_, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from leadform import db
from leadform.mail import (
    VISITOR_KINDS,
    FileBackend,
    Mail,
    PermanentFailure,
    RenderError,
    SMTPBackend,
    TemporaryFailure,
    caps_reached,
    failure_report,
    from_config,
    header_address,
    mailbox,
    render,
)
from leadform.models import OutboxMail, utcnow
from site_config import load_settings

log = logging.getLogger("leadform.outbox")
MAX_BACKOFF = 3600


def queue(s: Session, mail: Mail, lead_id: int | None = None, due_at: dt.datetime | None = None,
          team_round_id: str | None = None) -> None:
    """Add a composed mail to the caller's transaction; nothing is sent until that transaction commits.
    `due_at` (default: now) lets a delivery pass queue a mail it will still send itself. A mail about a
    lead or a team round names it, so purge and erasure remove it with them."""
    domain = current_app.config["MAIL_FROM"].rsplit("@", 1)[-1]
    now = utcnow()
    s.add(OutboxMail(kind=mail.kind, to_addr=mail.to, subject=mail.subject, context=mail.context,
                     headers=mail.headers, message_id=make_msgid(domain=domain), lead_id=lead_id, created_at=now,
                     status="queued", attempts=0, next_attempt_at=due_at or now, team_round_id=team_round_id,
                     mailbox=mailbox(mail.to) if mail.kind in VISITOR_KINDS else None))


def queue_for_visitor(s: Session, mail: Mail, lead_id: int | None = None, team_round_id: str | None = None) -> bool:
    """Queue a mail to a visitor's address unless its mailbox had `mails_per_address_per_day` of them
    in the last 24 hours, whatever the form and however the address was spelled. Returns whether it
    was queued. On PostgreSQL a lock per mailbox, held to the end of the caller's transaction, makes
    two requests for one mailbox count one after the other (SQLite has one writer at a time anyway)."""
    if mailbox_full(s, mail.to):
        log.info("visitor mail not queued kind=%s reason=mailbox-limit", mail.kind)
        return False
    queue(s, mail, lead_id=lead_id, team_round_id=team_round_id)
    return True


def mailbox_full(s: Session, address: str) -> bool:
    """Did this address's mailbox get its `mails_per_address_per_day` visitor mails in the last 24 hours?
    On PostgreSQL this takes the mailbox's lock for the rest of the caller's transaction."""
    box = mailbox(address)
    if s.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(box.encode()).digest()[:8], "big", signed=True)
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    sent_today = s.scalar(select(func.count()).select_from(OutboxMail).where(
        OutboxMail.mailbox == box, OutboxMail.created_at >= utcnow() - dt.timedelta(days=1),
        OutboxMail.kind.in_(VISITOR_KINDS)))
    return sent_today >= load_settings().limits.mails_per_address_per_day


def bodies(mail: Row) -> tuple[str, str | None]:
    """A mail's text and HTML: rendered from its context, or as stored (sent, or queued before 0004)."""
    if mail.context is not None:
        return render(mail.kind, mail.context)
    return mail.body_text or "", mail.body_html


def build_message(mail: Row, sender: str, text: str, html: str | None) -> EmailMessage:
    """The MIME message; EmailMessage refuses CR/LF in any header, so nothing can be injected."""
    message = EmailMessage()
    message["From"] = sender
    try:
        message["To"] = header_address(mail.to_addr)
    except ValueError:  # queued before the form refused such addresses: no retry can help
        raise PermanentFailure("recipient address not deliverable as written") from None
    message["Subject"] = mail.subject
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(mail.created_at.replace(tzinfo=dt.UTC))
    for name, value in (mail.headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    return message


# The claim's statements, built once: per batch only the values change (`now`, the lease's cutoff).
_NOW, _CUTOFF = bindparam("now"), bindparam("cutoff")
# FOR UPDATE SKIP LOCKED: on PostgreSQL two claimers take different rows instead of waiting for each
# other; SQLite has one writer at a time and SQLAlchemy leaves the clause out there.
ABANDONED = select(OutboxMail.id).where(OutboxMail.status == "sending", OutboxMail.claimed_at < _CUTOFF) \
    .order_by(OutboxMail.id).limit(bindparam("size")).with_for_update(skip_locked=True)
QUEUED = select(OutboxMail.id).where(OutboxMail.status == "queued", OutboxMail.next_attempt_at <= _NOW) \
    .order_by(OutboxMail.next_attempt_at).limit(bindparam("size")).with_for_update(skip_locked=True)
CLAIM = update(OutboxMail).where(
    OutboxMail.id.in_(bindparam("ids", expanding=True)),
    or_(and_(OutboxMail.status == "queued", OutboxMail.next_attempt_at <= _NOW),
        and_(OutboxMail.status == "sending", OutboxMail.claimed_at < _CUTOFF)),
).values(status="sending", claimed_at=bindparam("claimed_at"), attempts=OutboxMail.attempts + 1) \
    .returning(*OutboxMail.__table__.c)


def _claim(now: dt.datetime, size: int) -> list[Row]:
    """Up to `size` mails due at `now`, marked 'sending' in one transaction (one commit for the batch):
    first any left in 'sending' by a crash, then queued ones, oldest due first (ix_outbox_due).
    The UPDATE repeats the due condition, so a row another claimer took meanwhile is skipped."""
    times = {"now": now, "cutoff": now - dt.timedelta(seconds=int(current_app.config["OUTBOX_LEASE_SECONDS"]))}
    with db.engine().begin() as conn:
        ids = list(conn.scalars(ABANDONED, {**times, "size": size}))
        if len(ids) < size:
            ids += conn.scalars(QUEUED, {**times, "size": size - len(ids)})
        if not ids:
            return []
        # The lease starts at the claim, not at `now`: the pass may have been going for a while.
        claimed = conn.execute(CLAIM, {**times, "ids": ids, "claimed_at": utcnow()}).all()
    return sorted(claimed, key=lambda row: row.id)


_CLAIMED = (OutboxMail.id == bindparam("mail_id")) & (OutboxMail.status == "sending")
# A sent mail keeps what it said, as the retention purge expects, in place of its context.
MARK_SENT = update(OutboxMail).where(_CLAIMED).values(status="sent", sent_at=bindparam("at"), last_error=None,
                                                     body_text=bindparam("text"), body_html=bindparam("html"),
                                                     context=None)
DEFER = update(OutboxMail).where(_CLAIMED).values(status="queued", next_attempt_at=bindparam("at"),
                                                 last_error=bindparam("error"))
# Over the site's cap: back in the queue for later, the claim not counted as an attempt.
HOLD = update(OutboxMail).where(_CLAIMED).values(status="queued", next_attempt_at=bindparam("at"),
                                                attempts=OutboxMail.attempts - 1)
MARK_FAILED = update(OutboxMail).where(_CLAIMED).values(status="failed", last_error=bindparam("error"))
# Claimed, not tried: back in the queue as it was (still due), unless a later claim took it over.
RELEASE = update(OutboxMail).where(
    OutboxMail.id.in_(bindparam("ids", expanding=True)), OutboxMail.status == "sending",
    OutboxMail.claimed_at == bindparam("claimed"),
).values(status="queued", attempts=OutboxMail.attempts - 1)


def _finish(statement, mail_id: int, **values: object) -> None:
    with db.engine().begin() as conn:
        conn.execute(statement, {"mail_id": mail_id, **values})


PASS_SIZE = 100  # mails per call of deliver_due, unless the caller asks for more (cron) or fewer (the thread)
# Mails claimed per transaction. Their lease runs while the ones before them are sent, so a batch is
# only worked on for half the lease: then the rest goes back to the queue and is claimed again with a
# fresh lease, and no mail is sent after its lease ran out (another process may have taken it then).
# What a crash leaves claimed waits for the lease, as a single claimed mail did.
CLAIM_BATCH = 10


def deliver_due(limit: int = PASS_SIZE, stopping: threading.Event | None = None) -> dict[str, int]:
    """Send what is due now; returns counts per outcome. Safe to run from several processes. Once
    `stopping` is set, the mail in hand is finished and the rest claimed goes back to the queue.

    "Now" is the start of the pass, so each mail is tried at most once per pass: a mail deferred
    during the pass is due after its start, even with no backoff, and one claimed in it is not
    abandoned."""
    config = current_app.config
    backend = from_config(config)
    counts = {"sent": 0, "retry": 0, "failed": 0}  # held over the site's cap counts as a retry
    now = utcnow()
    work_on_batch = dt.timedelta(seconds=int(config["OUTBOX_LEASE_SECONDS"]) / 2)
    stopped = stopping.is_set if stopping is not None else lambda: False
    try:
        while (done := sum(counts.values())) < limit and not stopped():
            unsent = _claim(now, min(CLAIM_BATCH, limit - done))
            if not unsent:
                break
            try:
                while unsent and utcnow() - unsent[0].claimed_at < work_on_batch and not stopped():
                    counts[_deliver(backend, unsent.pop(0), now, config)] += 1
            finally:
                _release(unsent)
    finally:
        backend.close()
    return counts


def _release(mails_left: list[Row]) -> None:
    if not mails_left:
        return
    try:
        with db.engine().begin() as conn:
            conn.execute(RELEASE, {"ids": [m.id for m in mails_left], "claimed": mails_left[0].claimed_at})
    except Exception as exc:  # the lease brings them back anyway
        log.warning("claimed mail not released outbox_ids=%s error=%s", [m.id for m in mails_left],
                    type(exc).__name__)


def _deliver(backend: FileBackend | SMTPBackend, mail: Row, now: dt.datetime, config: dict) -> str:
    """Send one claimed mail and record the outcome in its own transaction: after a crash at most
    this one mail is sent twice, never one lost."""
    # The site's caps are limits like the per-IP ones: RATELIMIT_ENABLED=false (load tests) lifts them too.
    if mail.kind in VISITOR_KINDS and config.get("RATELIMIT_ENABLED", True) and (wait := _over_cap(now)):
        _finish(HOLD, mail.id, at=utcnow() + wait)
        return "retry"
    try:
        text, html = bodies(mail)
        backend.send(build_message(mail, config["MAIL_FROM"], text, html), mail.id)
    except (PermanentFailure, RenderError) as exc:
        _fail(mail, str(exc), now)
        return "failed"
    except Exception as exc:  # TemporaryFailure, or the unforeseen (a bug, a full disk): this one waits
        if mail.attempts >= int(config["OUTBOX_MAX_ATTEMPTS"]):
            _fail(mail, f"gave up after {mail.attempts} attempts: {exc}", now)
            return "failed"
        delay = min(int(config["OUTBOX_BACKOFF_SECONDS"]) * 2 ** (mail.attempts - 1), MAX_BACKOFF)
        _finish(DEFER, mail.id, at=utcnow() + dt.timedelta(seconds=delay), error=str(exc)[:500])
        reason = _reason(exc) if isinstance(exc, TemporaryFailure) else type(exc).__name__
        log.warning("mail deferred outbox_id=%s attempt=%s retry_in=%ss reason=%s",
                    mail.id, mail.attempts, delay, reason)
        return "retry"
    _finish(MARK_SENT, mail.id, at=utcnow(), text=text, html=html)
    return "sent"


HOLD_FOR = dt.timedelta(minutes=10)   # how long a mail over the cap waits before it is looked at again


def _over_cap(now: dt.datetime) -> dt.timedelta | None:
    """How long visitor mail must wait because the site sent `visitor_mails_per_hour` or `_per_day`
    of them already (a burst of requests with other people's addresses), or None. The first time in
    a day this happens, the coach gets one alert, due at once."""
    limits = load_settings().limits
    with db.transaction() as s:
        sent = select(func.count()).select_from(OutboxMail).where(
            OutboxMail.kind.in_(VISITOR_KINDS), OutboxMail.status == "sent")
        hour = s.scalar(sent.where(OutboxMail.sent_at >= now - dt.timedelta(hours=1)))
        # Counted even past the hourly cap: the coach's alert and the log line report it.
        day = s.scalar(sent.where(OutboxMail.sent_at >= now - dt.timedelta(days=1)))
        if hour < limits.visitor_mails_per_hour and day < limits.visitor_mails_per_day:
            return None
        alerted = s.scalar(select(func.count()).select_from(OutboxMail).where(
            OutboxMail.kind == "coach_mail_held", OutboxMail.created_at >= now - dt.timedelta(days=1)))
        if not alerted:
            waiting = s.scalar(select(func.count()).select_from(OutboxMail).where(
                OutboxMail.kind.in_(VISITOR_KINDS), OutboxMail.status.in_(("queued", "sending"))))
            queue(s, caps_reached(hour, day, waiting), due_at=now)
    log.warning("visitor mail held reason=cap sent_last_hour=%s sent_last_day=%s", hour, day)
    return HOLD_FOR


REASON = re.compile(r"\d{3}(?: \d\.\d{1,3}\.\d{1,3})?|[A-Za-z]\w*")


def _reason(exc: Exception) -> str:
    """The SMTP code or the error's name, never the rest: servers quote the recipient's address there."""
    match = REASON.match(str(exc))
    return match.group(0) if match else type(exc).__name__


def _fail(mail: Row, error: str, now: dt.datetime) -> None:
    """Mark failed and tell the coach, unless the failed mail was itself for the coach. The report is
    due at the pass's `now`, so this pass sends it."""
    with db.transaction() as s:
        s.execute(MARK_FAILED, {"mail_id": mail.id, "error": error[:500]})
        if mail.kind != "coach_mail_failed":
            queue(s, failure_report(mail, error), due_at=now)
    log.error("mail failed outbox_id=%s kind=%s reason=%s", mail.id, mail.kind, error.split(" ", 1)[0][:20])


# -- delivery after commit, in the background --------------------------------------------------------------

# After a request's kick the thread waits this long before its pass, so the mails of a surge go out
# in batches (one claim per ten mails) rather than each with its own claim: at 100 forms a second
# a claim per mail was an eighth of a worker's CPU (py-spy, bench/README.md).
GATHER_SECONDS = 0.2
STOP_WAIT_SECONDS = 10  # within gunicorn's graceful_timeout (20 s), after which the worker is killed


class _Worker:
    """One daemon thread per process: it delivers a moment (GATHER_SECONDS) after a request that queued
    mail has committed (`kick`), every OUTBOX_POLL_SECONDS for retries that came due, and once at start,
    so mail queued before a restart leaves within seconds with no visitor needed. Claims are safe across threads,
    processes and machines; cron's `flask outbox send` is the safety net. When the process ends
    normally (a deploy, gunicorn recycling a worker) the thread finishes the mail in hand and puts the
    rest it had claimed back in the queue, for the next process at once rather than after the lease."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.pid: int | None = None
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread in this process, once (gunicorn forks its workers after import)."""
        with self.lock:
            if self.pid != os.getpid():
                self.pid = os.getpid()
                self.thread = threading.Thread(target=self._run, name="leadform-outbox", daemon=True)
                self.thread.start()
                atexit.register(self.stop)

    def kick(self) -> None:
        self.start()
        self.wake.set()

    def stop(self) -> None:
        """Let the thread end after the mail in hand, the rest claimed put back (a server that stops, a test
        that ends)."""
        atexit.unregister(self.stop)
        self.stopping.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=STOP_WAIT_SECONDS)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                with self.app.app_context():
                    while not self.stopping.is_set():  # a batch at a time, while mail leaves the queue
                        counts = deliver_due(CLAIM_BATCH, self.stopping)
                        if not (counts["sent"] or counts["failed"]):  # empty, or only retries: wait
                            break
            except Exception:  # keep the thread alive; the next wake or poll tries again
                log.exception("outbox worker error")
            if self.wake.wait(timeout=float(self.app.config["OUTBOX_POLL_SECONDS"])):
                self.stopping.wait(GATHER_SECONDS)  # a request woke it: let the mails of a surge join in
            self.wake.clear()


def stop(app: Flask) -> None:
    """Stop this app's delivery thread, if it runs."""
    app.extensions["leadform.outbox"].stop()


def init_app(app: Flask) -> None:
    app.extensions["leadform.outbox"] = _Worker(app)


def start(app: Flask) -> None:
    """Start delivering in the background (the servers call this; tests and CLI commands do not)."""
    if app.config["OUTBOX_THREAD"]:
        app.extensions["leadform.outbox"].start()


def kick() -> None:
    """Call after a commit that queued mail."""
    if current_app.config["OUTBOX_THREAD"]:
        current_app.extensions["leadform.outbox"].kick()
