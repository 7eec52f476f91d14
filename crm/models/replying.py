"""Who is writing a reply to a conversation right now (a marker that expires), so colleagues do not both answer."""
from datetime import datetime

from sqlalchemy import ForeignKey, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime


class ReplyMarker(db.Model):
    """A member of staff is drafting a reply to a conversation until `expires_at`."""

    __tablename__ = "reply_markers"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user = relationship("User")

    __table_args__ = (UniqueConstraint("conversation_id", "user_id"),)
