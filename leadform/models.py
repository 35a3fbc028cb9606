"""Tables: leads and their download links, contact messages, consent proof, page counts, outbox,
team rounds and their anonymous answers, assessments (answers of a lead who asked for a personal
report) and their anonymous totals.

Only what serves a purpose is stored: no IP address, no user agent anywhere.
Times are naive UTC; `when()` shows one to the coach in Belgian time.
"""

from __future__ import annotations

import datetime as dt
import secrets
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


BRUSSELS = ZoneInfo("Europe/Brussels")
WHEN = "%d/%m/%Y %H:%M"  # how the coach reads a moment: Belgian time, as Excel in Belgium parses it


def belgian_time(value: dt.datetime) -> dt.datetime:
    """A stored moment (naive UTC) as the coach lives it: Europe/Brussels, winter and summer time."""
    return value.replace(tzinfo=dt.UTC).astimezone(BRUSSELS)


def when(value: dt.datetime | None) -> str:
    """'15/01/2026 04:00' for 03:00 UTC in winter; '' for no moment."""
    return belgian_time(value).strftime(WHEN) if value else ""


def new_id() -> str:
    return secrets.token_hex(16)  # 128 random bits as 32 hex digits, cheaper than uuid4().hex


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: DateTime()}


class Lead(Base):
    """One person asking for one checklist; asking again updates the same row."""

    __tablename__ = "leads"
    __table_args__ = (UniqueConstraint("checklist", "email", name="uq_leads_checklist_email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    checklist: Mapped[str] = mapped_column(String(40))
    email: Mapped[str] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(100))
    newsletter_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    newsletter_consent_at: Mapped[dt.datetime | None]   # only after the address is confirmed
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[dt.datetime | None]
    request_count: Mapped[int] = mapped_column(Integer, default=1)

    downloads: Mapped[list[Download]] = relationship(back_populates="lead", cascade="all, delete-orphan")
    assessments: Mapped[list[Assessment]] = relationship(back_populates="lead", cascade="all, delete-orphan")


class Download(Base):
    """A personal download link: only the hash of its secret is stored."""

    __tablename__ = "downloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    first_used_at: Mapped[dt.datetime | None]
    use_count: Mapped[int] = mapped_column(Integer, default=0)

    lead: Mapped[Lead] = relationship(back_populates="downloads")


class ContactMessage(Base):
    __tablename__ = "contact_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(60))
    message: Mapped[str] = mapped_column(Text)


class ConsentRecord(Base):
    """Append-only proof of one cookie choice (GDPR art. 7(1)); never updated."""

    __tablename__ = "consent_records"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    subject_id: Mapped[str] = mapped_column(String(32), index=True)
    event: Mapped[str] = mapped_column(String(12))          # given, refused, withdrawn, updated
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    choices: Mapped[dict] = mapped_column(JSON)              # {"necessary": true, "analytics": false}
    button: Mapped[str] = mapped_column(String(20))          # accept_all, reject_all, save
    policy_version: Mapped[int] = mapped_column(Integer)
    banner_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime]
    site_build: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254))  # only when a form linked it; no index (0003)


class PageView(Base):
    """Self-hosted analytics: a count per path per day, nothing about the visitor."""

    __tablename__ = "page_views"
    __table_args__ = (UniqueConstraint("day", "path", name="uq_page_views_day_path"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column()
    path: Mapped[str] = mapped_column(String(200))
    count: Mapped[int] = mapped_column(Integer, default=0)


class OutboxMail(Base):
    """A mail queued in the same transaction as what caused it, sent after commit."""

    __tablename__ = "outbox"
    # The delivery pass asks for queued mail that is due, oldest due first: with this index SQLite reads
    # just the rows it claims, however many thousands wait after a burst.
    # ix_outbox_mailbox: a visitor's mails of the last day, per mailbox (the daily limit);
    # ix_outbox_sent: visitor mails sent in the last hour or day (the site's caps).
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),
                      Index("ix_outbox_mailbox", "mailbox", "created_at"), Index("ix_outbox_sent", "sent_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(40))
    to_addr: Mapped[str] = mapped_column(String(254), index=True)
    # Mails to a visitor only: the address in one spelling per mailbox (mail.mailbox), what the daily
    # limit counts; erased with the row.
    mailbox: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    # What the templates need, written by the request; the bodies are rendered from it at delivery and
    # kept in place of it once sent (leadform/mails.py). Rows queued before 0004 carry bodies only.
    context: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)  # Reply-To, List-Unsubscribe
    message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued/sending/sent/failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    # Mail to a team leader about their round: purged and erased with it (0007).
    team_round_id: Mapped[str | None] = mapped_column(ForeignKey("team_rounds.id", ondelete="SET NULL"))


class TeamRound(Base):
    """A team leader's anonymous round on one checklist. It opens when the leader confirms their address
    (the mailed link), takes answers for `team_round_open_days`, then shows its report; it is deleted
    with its answers `team_round_days` after it closed. The id is random: the links carry it signed, and
    it tells nobody how many rounds there are."""

    __tablename__ = "team_rounds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    checklist: Mapped[str] = mapped_column(String(40))
    leader_name: Mapped[str] = mapped_column(String(100))
    leader_email: Mapped[str] = mapped_column(String(254), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[dt.datetime | None]   # the leader opened the mailed link: the round is open
    closes_at: Mapped[dt.datetime | None]      # confirmed_at + team_round_open_days, or earlier by the leader
    closed_at: Mapped[dt.datetime | None]      # when its closing was handled (report mail queued)

    answers: Mapped[list[TeamAnswer]] = relationship(back_populates="round", cascade="all, delete-orphan",
                                                     passive_deletes=True)


class TeamAnswer(Base):
    """One member's scores, anonymous by construction: no name, no address, no time. The key is the hash of
    the answer form's single-use token (one answer per form shown), random, so not even the order of the
    answers is kept; SQLite stores the table without its rowid, which would count them."""

    __tablename__ = "team_answers"
    __table_args__ = {"sqlite_with_rowid": False}

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    round_id: Mapped[str] = mapped_column(ForeignKey("team_rounds.id", ondelete="CASCADE"), index=True)
    scores: Mapped[list] = mapped_column(JSON)   # one score per statement, in the checklist's order

    round: Mapped[TeamRound] = relationship(back_populates="answers")


class Assessment(Base):
    """One person's answers to a checklist, stored only because they asked for their personal report;
    goes with its lead (GDPR export, erase and the retention purge). The report link's secret is
    kept as a hash only, as for a download."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    checklist: Mapped[str] = mapped_column(String(40))
    answers: Mapped[dict] = mapped_column(JSON)               # {"vertrouwen-1": 4, ...}
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime]
    first_used_at: Mapped[dt.datetime | None]
    use_count: Mapped[int] = mapped_column(Integer, default=0)

    lead: Mapped[Lead] = relationship(back_populates="assessments")


class AssessmentTotal(Base):
    """Anonymous totals of completed self-assessments per week, checklist and theme: how many were
    completed, how many answers and their sum, how many asked for a report. No single visitor's
    answers can be read back, and the counts outlive the erasure or purge of the leads behind them."""

    __tablename__ = "assessment_totals"
    __table_args__ = (UniqueConstraint("week", "checklist", "theme", name="uq_assessment_totals_week_theme"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[dt.date] = mapped_column()                   # the Monday of the week (Belgian time)
    checklist: Mapped[str] = mapped_column(String(40))
    theme: Mapped[str] = mapped_column(String(40))
    completed: Mapped[int] = mapped_column(Integer, default=0)
    answers: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(Integer, default=0)
    reports: Mapped[int] = mapped_column(Integer, default=0)   # personal reports asked (kept after erasure)
