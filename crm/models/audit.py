"""The audit log: who did what to which record, kept for accountability."""
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String, JSON, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class AuditLog(db.Model):
    """One audited action."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[Optional[str]] = mapped_column(String(40))
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    actor = relationship("User")

    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id"),)
