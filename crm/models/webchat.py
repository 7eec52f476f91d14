"""Webchat: per-chat queue state, agents' live sockets, opening hours and canned replies."""
from datetime import datetime, time
from typing import Optional

from sqlalchemy import ForeignKey, Index, Integer, SmallInteger, String, Text, Time
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class ChatSession(db.Model):
    """The live-chat side of a webchat Conversation: who asked, where it stands in the queue."""

    __tablename__ = "chat_sessions"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    # Open chats per visitor are limited: the widget's random visitor id and the client address.
    visitor_id: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    visitor_ip: Mapped[Optional[str]] = mapped_column(String(45), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[Optional[str]] = mapped_column(String(254))
    phone: Mapped[Optional[str]] = mapped_column(String(40))
    # FIFO by queued_at; a chat put back (agent gone, transfer) gets priority 1: the head.
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    priority: Mapped[int] = mapped_column(SmallInteger, default=0)
    assigned_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The first agent's start: a chat's handle time runs from it, whoever held the chat since.
    first_assigned_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Set when the resident was offered "leave a message" (no agent in time).
    offline_offered_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Case reference or WEB-000123 when the chat became a left message.
    offline_reference: Mapped[Optional[str]] = mapped_column(String(20))
    rating: Mapped[Optional[int]] = mapped_column(SmallInteger)
    # A transcript goes out once per chat (crm.webchat.transcript), so a chat cannot be used to relay mail.
    transcript_sent_to: Mapped[Optional[str]] = mapped_column(String(254))

    conversation = relationship("Conversation", backref=db.backref("chat", uselist=False))

    __table_args__ = (Index("ix_chat_sessions_queue_order", "priority", "queued_at"),)


class AgentSocket(db.Model):
    """One live /agent connection; server processes refresh seen_at so a dead process's sockets age out."""

    __tablename__ = "agent_sockets"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    server_id: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    user = relationship("User")


class AgentSkill(db.Model):
    """A chat topic an agent handles: with skills configured for a topic, its chats go to those agents first."""

    __tablename__ = "agent_skills"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    # A chat topic code (Conversation.topic), e.g. council_tax.
    topic: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)

    user = relationship("User", backref=db.backref("chat_skills", cascade="all, delete-orphan"))


class OpeningHours(db.Model):
    """When webchat is staffed: one row per weekday opening (0 = Monday); bank holidays closed."""

    __tablename__ = "chat_opening_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    weekday: Mapped[int] = mapped_column(Integer)
    opens: Mapped[time] = mapped_column(Time)
    closes: Mapped[time] = mapped_column(Time)


class CannedReply(db.Model):
    """A ready answer an agent can drop into a chat."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    topic: Mapped[Optional[str]] = mapped_column(String(60))
    # The channel it is written for ("email", "webchat"); None means any channel.
    channel: Mapped[Optional[str]] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
