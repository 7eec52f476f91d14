"""Cases routed to services, and the events that make up their history."""
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String, Text, Integer, Boolean, Index, Float
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

CASE_STATUSES = ("new", "open", "in_progress", "awaiting_customer", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")


class Case(db.Model):
    """A matter that could not be resolved at first contact, owned by a service."""

    __tablename__ = "cases"
    # AUTOINCREMENT on SQLite so a deleted case's number (and so its reference) is never reused.
    __table_args__ = (
        # The service work list: by status ordered by SLA, and all open work ordered by SLA.
        Index("ix_cases_service_status", "service_id", "status", "sla_due_at"),
        Index("ix_cases_service_sla", "service_id", "sla_due_at"),
        Index("ix_cases_customer_id", "customer_id"),
        Index("ix_cases_sla_due", "status", "sla_due_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[Optional[str]] = mapped_column(String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    queue_id: Mapped[Optional[int]] = mapped_column(ForeignKey("queues.id"))
    category: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="new")
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    source_channel: Mapped[Optional[str]] = mapped_column(String(20))
    assignee_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"), index=True)
    # Not a foreign key: contacts.case_id already points here, and a cycle of FKs between the
    # two tables would need ALTERs that SQLite batch migrations cannot replay.
    raised_by_contact_id: Mapped[Optional[int]] = mapped_column(Integer)
    location_address: Mapped[Optional[str]] = mapped_column(String(300))
    # The address the resident gave for this case: its confirmation and updates go there, not to
    # whatever their record holds, so a report matched to someone else never mails that person.
    contact_email: Mapped[Optional[str]] = mapped_column(String(254))
    contact_phone: Mapped[Optional[str]] = mapped_column(String(20))
    latitude: Mapped[Optional[float]] = mapped_column(Float)
    longitude: Mapped[Optional[float]] = mapped_column(Float)
    merged_into_id: Mapped[Optional[int]] = mapped_column(ForeignKey("cases.id"))
    sla_due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    first_response_due_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    first_responded_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    # Marked by the periodic SLA job: less than the at-risk margin of working time remains.
    sla_at_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    first_response_breached: Mapped[bool] = mapped_column(Boolean, default=False)
    # The working hours the SLA was set from (routing rule or service), kept for reporting.
    sla_hours: Mapped[Optional[int]] = mapped_column(Integer)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    closed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer = relationship("Customer")
    service = relationship("Service")
    queue = relationship("Queue")
    assignee = relationship("User")
    events = relationship("CaseEvent", back_populates="case", order_by="CaseEvent.id")


class CaseEvent(db.Model):
    """Something that happened to a case: created, routed, assigned, status change, note, update."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # Copied from the case so the customer timeline reads one index per table.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    from_value: Mapped[Optional[str]] = mapped_column(String(120))
    to_value: Mapped[Optional[str]] = mapped_column(String(120))
    body: Mapped[Optional[str]] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case = relationship("Case", back_populates="events")
    actor = relationship("User")

    __table_args__ = (
        Index("ix_case_events_customer_timeline", "customer_id", "occurred_at", "id"),
    )
