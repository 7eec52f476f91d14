"""The email channel: every raw inbound message as received, and every outbound send."""
from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

# What became of an inbound message; "received" means stored but not (yet) processed.
INBOUND_STATUSES = ("received", "ingested", "threaded", "duplicate", "auto_reply", "quarantined")
INBOUND_SOURCES = ("smtp", "http", "file")
OUTBOUND_KINDS = ("reply", "ack", "notification")
# queued → sending → sent; retrying between attempts; failed when attempts run out; bounced when the
# recipient's server later said no; suppressed when the address was already undeliverable.
OUTBOUND_STATUSES = ("queued", "sending", "retrying", "sent", "failed", "bounced", "suppressed")


class InboundEmail(db.Model):
    """One raw inbound message exactly as it arrived, stored before anything else is done with it."""

    __tablename__ = "inbound_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the Message-ID, or of the raw bytes when there is none: the same message twice
    # is stored once.
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    message_id_header: Mapped[Optional[str]] = mapped_column(String(500))
    content_sha256: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(10))
    envelope_from: Mapped[Optional[str]] = mapped_column(String(500))
    envelope_to: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="received")
    reason: Mapped[Optional[str]] = mapped_column(Text)
    # Parser defects, withheld attachments, auto-reply signals: what a reviewer wants to see.
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    from_address: Mapped[Optional[str]] = mapped_column(String(254))
    subject: Mapped[Optional[str]] = mapped_column(String(300))
    # The whole plain text; the conversation message shows it with quotes and signature trimmed.
    full_text: Mapped[Optional[str]] = mapped_column(Text)
    customer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("customers.id"))
    conversation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("conversations.id"), index=True)
    stored_message_id: Mapped[Optional[int]] = mapped_column(ForeignKey("messages.id"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    customer = relationship("Customer")
    conversation = relationship("Conversation")
    stored_message = relationship("Message")

    __table_args__ = (Index("ix_inbound_emails_status_received", "status", "received_at"),)


class OutboundEmail(db.Model):
    """An email we send: the envelope and threading headers of one outbound conversation message."""

    __tablename__ = "outbound_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    stored_message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    to_address: Mapped[str] = mapped_column(String(254))
    to_name: Mapped[Optional[str]] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    message_id_header: Mapped[str] = mapped_column(String(500), unique=True)
    in_reply_to: Mapped[Optional[str]] = mapped_column(String(500))
    references: Mapped[Optional[str]] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)  # a worker began sending
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    stored_message = relationship("Message")
    conversation = relationship("Conversation")

    # Acknowledgements are rate-limited per sender: count recent ones by address and kind.
    __table_args__ = (Index("ix_outbound_emails_to_kind_created", "to_address", "kind", "created_at"),)


class EmailThreadRef(db.Model):
    """A Message-ID a stored message refers to that was not known when it arrived.

    When that message turns up later, the conversations waiting for it are joined to it (and an
    automatic reply waiting for it is filed under it), so threads come out the same in any order.
    """

    __tablename__ = "email_thread_refs"

    id: Mapped[int] = mapped_column(primary_key=True)
    referenced_id: Mapped[str] = mapped_column(String(500), index=True)
    conversation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("conversations.id"), index=True)
    # An automatic reply not yet filed anywhere: filed when the message it answers arrives.
    inbound_id: Mapped[Optional[int]] = mapped_column(ForeignKey("inbound_emails.id"), index=True)

    # Declared so that a flush writes the conversation (and message) before the rows that point at them.
    conversation = relationship("Conversation")
    inbound = relationship("InboundEmail")
