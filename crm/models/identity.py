"""Possible duplicate customers for staff to review, and the merges that can be undone."""
from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

DUPLICATE_STATUSES = ("open", "merged", "dismissed")


class PossibleDuplicate(db.Model):
    """Two customers that may be one person: a touch pointed at `other` but was not strong enough to join it."""

    __tablename__ = "possible_duplicates"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The record made (or matched) for the touch, and the existing record its identifiers pointed at.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    other_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # Why they may be one person, e.g. [{"kind": "phone", "value": "+447700900002", "why": "..."}].
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    source: Mapped[Optional[str]] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    merge_id: Mapped[Optional[int]] = mapped_column(ForeignKey("customer_merges.id"))

    customer = relationship("Customer", foreign_keys=[customer_id])
    other = relationship("Customer", foreign_keys=[other_id])
    decided_by = relationship("User")

    __table_args__ = (
        Index("ix_possible_duplicates_status", "status", "created_at"),
        Index("ix_possible_duplicates_customer", "customer_id"),
        Index("ix_possible_duplicates_other", "other_id"),
    )


class CustomerMerge(db.Model):
    """One merge of `source` into `target`, with exactly what it moved, so it can be undone."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    # Table name -> ids of the rows moved from source to target.
    moved: Mapped[dict] = mapped_column(JSON, default=dict)
    # What the merge overwrote on the target (name, vulnerability notes, main flags), to put back.
    before: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    undone_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    undo_reason: Mapped[Optional[str]] = mapped_column(Text)

    source = relationship("Customer", foreign_keys=[source_id])
    target = relationship("Customer", foreign_keys=[target_id])
    actor = relationship("User", foreign_keys=[actor_id])
