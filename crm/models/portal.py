"""Resident accounts on the public pages, their one-time sign-in links, and web-form drafts."""
from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class ResidentAccount(db.Model):
    """A resident's sign-in to /account: separate from staff users, tied to one Customer.

    The tie is a `portal` CustomerIdentity made once the resident has proved the email
    address is theirs (by a one-time link); until then the account sees no cases. Because
    the tie is an identity, a staff merge of two customers carries the account along.
    """

    __tablename__ = "resident_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # normalised, lower-case
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[Optional[str]] = mapped_column(String(255))  # None: sign-in links only
    identity_id: Mapped[Optional[int]] = mapped_column(ForeignKey("customer_identities.id"), unique=True)
    email_verified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Contact preference: email me when my cases change.
    email_updates: Mapped[bool] = mapped_column(Boolean, default=True)
    # Rotated on password change and "sign out everywhere": sessions carrying an old one end.
    session_stamp: Mapped[str] = mapped_column(String(32))
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    identity = relationship("CustomerIdentity")


class ResidentSignInToken(db.Model):
    """A one-time sign-in link sent by email; only the SHA-256 of its secret is stored."""

    __tablename__ = "resident_sign_in_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("resident_accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    account = relationship("ResidentAccount")


class FormDraft(db.Model):
    """Answers to a web form kept between pages (and uploads kept across an error), by a secret token."""

    __tablename__ = "form_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("form_definitions.id"))
    answers: Mapped[dict] = mapped_column(JSON, default=dict)
    # Field name -> id of an Attachment not yet given to a case.
    uploads: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    form = relationship("FormDefinition")

    __table_args__ = (Index("ix_form_drafts_updated_at", "updated_at"),)
