"""Supervisor data: agent state history, banners to agents and cost per contact.

Opening hours live with webchat (crm.models.webchat.OpeningHours); supervisors edit them.
"""
from datetime import date, datetime
from typing import Optional

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class AgentStateChange(db.Model):
    """One change of an agent's presence, so reports can show agent states over time."""

    __tablename__ = "agent_state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User")

    __table_args__ = (
        # Reports read one agent's changes in a period, and the last change before it.
        Index("ix_agent_state_changes_user_at", "user_id", "at"),
        # ... and every change in a period, from the index alone.
        Index("ix_agent_state_changes_at_user_status", "at", "user_id", "status"),
    )


class Banner(db.Model):
    """A notice a supervisor posts to agents (and, when public, to the chat page)."""

    __tablename__ = "banners"

    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str] = mapped_column(String(300))
    # Public banners are also shown to residents on the webchat page.
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    cleared_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    created_by = relationship("User")


class ContactDailyTotal(db.Model):
    """Contacts per council-local day, channel, direction, outcome and category (a rollup).

    Kept in step with `contacts` inside the same transaction by crm.supervisor.rollup (every
    insert, change and delete through the ORM); `flask crm rebuild-report-totals` rebuilds it
    after bulk loads. Reports of a month read a few thousand of these rows instead of ~50,000
    contacts. `category` is "" for contacts without one (primary keys cannot be null).
    """

    __tablename__ = "contact_daily_totals"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    direction: Mapped[str] = mapped_column(String(10), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(30), primary_key=True)
    category: Mapped[str] = mapped_column(String(60), primary_key=True)
    contacts: Mapped[int] = mapped_column(Integer, default=0)
    handled: Mapped[int] = mapped_column(Integer, default=0)
    handle_seconds: Mapped[int] = mapped_column(BigInteger, default=0)


class ChannelCost(db.Model):
    """The estimated cost of one contact on a channel, in pence, for channel-shift reports."""

    __tablename__ = "channel_costs"

    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    pence: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# Report indexes on other areas' tables, declared here beside the reports that need them.
# A month's report reads ~50k contacts of 2M: with every column the reports touch in the
# index, SQLite and PostgreSQL answer from the index alone (no row lookups); see bench/README.md.
from .cases import Case  # noqa: E402
from .contacts import Contact  # noqa: E402

Index("ix_contacts_report", Contact.occurred_at, Contact.direction, Contact.channel, Contact.outcome,
      Contact.category, Contact.agent_id, Contact.case_id, Contact.started_at, Contact.ended_at)
# SLA met per service reads the cases raised in the range.
Index("ix_cases_created_service", Case.created_at, Case.service_id)
