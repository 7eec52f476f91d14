"""Staff users, their API tokens and their presence."""
from datetime import datetime
from typing import Optional

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, Integer, Boolean, Index
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..extensions import db
from .types import UTCDateTime, utcnow

ROLES = ("agent", "supervisor", "service_officer", "records", "editor", "admin")
PRESENCE_STATES = ("available", "busy", "away", "offline")
# Changing any of these ends the user's sessions: what a session was signed in with no longer holds.
SESSION_BOUND = ("password_hash", "role", "active", "service_id")


def new_session_stamp() -> str:
    import secrets

    return secrets.token_hex(8)


class User(UserMixin, db.Model):
    """A member of staff who signs in to the console or calls the API."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="agent")
    password_hash: Mapped[Optional[str]] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Service officers work the cases of one service.
    service_id: Mapped[Optional[int]] = mapped_column(ForeignKey("services.id"))
    # Webchat: how many chats an agent takes at once (set by a supervisor).
    chat_capacity: Mapped[int] = mapped_column(Integer, default=3)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    last_login_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Stored in each session at sign-in and checked on every request and socket event (crm.auth.sessions).
    session_stamp: Mapped[str] = mapped_column(String(32), default=new_session_stamp)

    service = relationship("Service", foreign_keys=[service_id])
    tokens = relationship("ApiToken", back_populates="user", cascade="all, delete-orphan")

    @property
    def is_active(self) -> bool:
        return self.active

    @validates(*SESSION_BOUND)
    def _end_sessions_on_change(self, key, value):
        if self.id is not None and getattr(self, key) != value:
            self.session_stamp = new_session_stamp()
        return value

    def get_id(self) -> str:
        """Name the user in the session with their stamp, so a new stamp signs every session out."""
        return f"{self.id}:{self.session_stamp}"

    def has_role(self, *roles: str) -> bool:
        """Admins may do everything; others only what their role names."""
        return self.role == "admin" or self.role in roles

    def __repr__(self):
        return f"<User {self.email} {self.role}>"


class ApiToken(db.Model):
    """A bearer token for the API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    label: Mapped[Optional[str]] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    user = relationship("User", back_populates="tokens")


class StaffSocket(db.Model):
    """A live staff Socket.IO connection (/agent or /supervisor), so ending a session or token can close it."""

    __tablename__ = "staff_sockets"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_id: Mapped[Optional[int]] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentPresence(db.Model):
    """An agent's current availability for live work."""

    __tablename__ = "agent_presence"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="offline")
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user = relationship("User")
