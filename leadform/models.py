"""Tables: leads and their download links, contact messages, consent proof, page counts, outbox.

Only what serves a purpose is stored: no IP address, no user agent anywhere.
Times are naive UTC.
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


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
