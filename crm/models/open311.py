"""Open311 GeoReport v2: what a reporting app posted, beside the case it raised."""
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String, JSON, Float
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class Open311Request(db.Model):
    """A service request received over Open311; its token is what clients poll with."""

    __tablename__ = "open311_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    # The staff user whose API key posted it (FixMyStreet's council integration, an app).
    client_user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    service_code: Mapped[str] = mapped_column(String(40))
    address_string: Mapped[Optional[str]] = mapped_column(String(300))
    address_id: Mapped[Optional[str]] = mapped_column(String(60))
    latitude: Mapped[Optional[float]] = mapped_column(Float)
    longitude: Mapped[Optional[float]] = mapped_column(Float)
    device_id: Mapped[Optional[str]] = mapped_column(String(120))
    account_id: Mapped[Optional[str]] = mapped_column(String(120))
    media_url: Mapped[Optional[str]] = mapped_column(String(1000))
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    case = relationship("Case")
