"""Information governance: legal holds, retention schedules and their runs, erasure tombstones."""
from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

# The kinds of record a retention schedule covers, in the order a run applies them.
RETENTION_KINDS = (
    "closed_cases", "email_conversations", "webchat_transcripts", "phone_contact_notes", "web_form_drafts",
    "quarantined_emails", "raw_inbound_email", "audit_entries", "resident_accounts",
)
RETENTION_ACTIONS = ("delete", "anonymise")


class LegalHold(db.Model):
    """A hold on a customer or a case: nothing of it is erased or deleted by retention until released."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("customers.id"), index=True)
    case_id: Mapped[Optional[int]] = mapped_column(ForeignKey("cases.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    # The council's own reference for the matter (a claim, an inquiry, a tribunal).
    reference: Mapped[Optional[str]] = mapped_column(String(100))
    placed_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    placed_by = relationship("User", foreign_keys=[placed_by_id])
    released_by = relationship("User", foreign_keys=[released_by_id])


class RetentionRule(db.Model):
    """How long one kind of record is kept and what then happens to it (per service for closed cases)."""

    __tablename__ = "retention_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    # Closed cases only: a schedule for one service; None is every other service.
    service_id: Mapped[Optional[int]] = mapped_column(ForeignKey("services.id"))
    period_days: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10), default="delete")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    service = relationship("Service")

    __table_args__ = (UniqueConstraint("kind", "service_id", name="uq_retention_rules_kind_service"),)


class RetentionRun(db.Model):
    """One application of the retention schedules (or a dry run of it): what it did, counted per kind."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # None when the worker ran it on its daily schedule.
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    # Records a legal hold kept, per kind.
    held: Mapped[dict] = mapped_column(JSON, default=dict)

    actor = relationship("User")

    __table_args__ = (Index("ix_retention_runs_started_at", "started_at"),)


class ErasureTombstone(db.Model):
    """That a customer's personal data was erased: when, by whom, why; never the personal data itself."""

    __tablename__ = "erasure_tombstones"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    request_reference: Mapped[Optional[str]] = mapped_column(String(100))
    counts: Mapped[dict] = mapped_column(JSON, default=dict)

    actor = relationship("User")
