"""Conversations (an email thread or a chat session) and their ordered messages."""
from datetime import datetime
from typing import Optional

from sqlalchemy import (
    ForeignKey, String, Text, Integer, Boolean, Index, UniqueConstraint, LargeBinary,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..extensions import db
from .types import UTCDateTime, utcnow

CONVERSATION_STATUSES = ("queued", "open", "assigned", "waiting_customer", "resolved", "ended", "closed")
AUTHOR_KINDS = ("resident", "agent", "system")


class Conversation(db.Model):
    """An email thread or a chat session with a customer."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="open")
    subject: Mapped[Optional[str]] = mapped_column(String(300))
    # Secret handle: chat resume token, reply+TOKEN@ address, [#TOKEN] in subjects.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    queue_id: Mapped[Optional[int]] = mapped_column(ForeignKey("queues.id"), index=True)
    assignee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    case_id: Mapped[Optional[int]] = mapped_column(ForeignKey("cases.id"), index=True)
    topic: Mapped[Optional[str]] = mapped_column(String(60))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_message_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # An email thread found to be part of another (its parent arrived late) points at it.
    merged_into_id: Mapped[Optional[int]] = mapped_column(ForeignKey("conversations.id"))

    customer = relationship("Customer")
    queue = relationship("Queue")
    assignee = relationship("User")
    case = relationship("Case", foreign_keys=[case_id])
    messages = relationship("Message", back_populates="conversation", order_by="Message.seq")

    __table_args__ = (Index("ix_conversations_queue_status", "queue_id", "status"),)


class Message(db.Model):
    """One entry of a conversation, ordered by seq; client_id makes sends idempotent."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    seq: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(10))  # resident | agent | system
    author_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    direction: Mapped[str] = mapped_column(String(10), default="inbound")
    body: Mapped[str] = mapped_column(Text, default="")  # plain text, always present
    html: Mapped[Optional[str]] = mapped_column(Text)  # sanitised for display
    internal: Mapped[bool] = mapped_column(Boolean, default=False)  # notes never go out
    client_id: Mapped[Optional[str]] = mapped_column(String(100))
    email_message_id: Mapped[Optional[str]] = mapped_column(String(500), index=True)
    # Outbound delivery: queued, sent, failed (with the reason).
    delivery_status: Mapped[Optional[str]] = mapped_column(String(20))
    delivery_error: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the author sent it (an email's Date): a thread is in this order, whatever the arrival order.
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    conversation = relationship("Conversation", back_populates="messages")
    author_user = relationship("User")
    attachments = relationship("Attachment", back_populates="message", order_by="Attachment.id")

    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("conversation_id", "client_id"),
    )


class Attachment(db.Model):
    """A file that came with (or went with) a message."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[Optional[int]] = mapped_column(ForeignKey("messages.id"), index=True)
    case_id: Mapped[Optional[int]] = mapped_column(ForeignKey("cases.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    content_id: Mapped[Optional[str]] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message = relationship("Message", back_populates="attachments")

    @validates("filename")
    def _safe_filename(self, _key, value):
        # Every way in (email, forms, Open311, staff uploads) stores a name safe in a header and on disk.
        from ..security import clean_filename

        return clean_filename(value)
