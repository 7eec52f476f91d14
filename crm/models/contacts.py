"""Contacts: one row per touch on any channel, the unit of the timeline and of reporting."""
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String, Text, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

CHANNELS = ("phone", "email", "webchat", "web_form", "open311", "face_to_face", "letter")
DIRECTIONS = ("inbound", "outbound")
OUTCOMES = (
    "resolved_first_time",
    "case_raised",
    "signposted",
    "transferred",
    "abandoned",
    "pending",
)


class Contact(db.Model):
    """A touch with a customer: a call, an email, a chat, a form, an Open311 report."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10), default="inbound")
    # occurred_at orders the timeline; started/ended give handle time.
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    ended_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    agent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    category: Mapped[Optional[str]] = mapped_column(String(60))
    summary: Mapped[str] = mapped_column(String(300), default="")
    notes: Mapped[Optional[str]] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(30), default="pending")
    conversation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("conversations.id"))
    case_id: Mapped[Optional[int]] = mapped_column(ForeignKey("cases.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer = relationship("Customer")
    agent = relationship("User")
    conversation = relationship("Conversation", foreign_keys=[conversation_id])
    case = relationship("Case", foreign_keys=[case_id])

    __table_args__ = (
        # The timeline reads newest first per customer; reports read by date and channel.
        Index("ix_contacts_customer_timeline", "customer_id", "occurred_at", "id"),
        Index("ix_contacts_occurred_channel", "occurred_at", "channel"),
        Index("ix_contacts_case_id", "case_id"),
        Index("ix_contacts_conversation_id", "conversation_id"),
    )

    @property
    def handle_seconds(self) -> Optional[int]:
        if self.started_at and self.ended_at:
            return max(0, int((self.ended_at - self.started_at).total_seconds()))
        return None
