"""The outbox: after-commit work written in the same transaction as the change that asks for it."""
from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class OutboxJob(db.Model):
    """One piece of work (a registered job and its arguments) owed by a committed change.

    A finished job's row is deleted; a row that ran out of attempts keeps `failed_at` and its error.
    """

    __tablename__ = "outbox_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(200))
    args: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The sweep runs a row from then on: later than created_at, so the relay's job goes first.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Whoever runs the job holds it until then; a runner killed mid-job frees it by expiry.
    claimed_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    failed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    last_error: Mapped[Optional[str]] = mapped_column(Text)

    __table_args__ = (
        # The sweep reads the rows that are due and not failed.
        Index("ix_outbox_jobs_due_at", "due_at"),
    )
