"""Customers (residents), their identities and addresses."""
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String, Boolean, Text, UniqueConstraint, Index, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

IDENTITY_KINDS = ("email", "phone", "chat", "portal")
# Where an identity came from: a channel, a portal sign-in link, staff, or an import.
IDENTITY_SOURCES = ("email", "chat", "web_form", "open311", "phone", "portal", "staff", "import")


class Customer(db.Model):
    """A resident or organisation the council deals with."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Set when this record was merged into another; searches skip it, links follow it.
    merged_into_id: Mapped[Optional[int]] = mapped_column(ForeignKey("customers.id"))
    # Sensitive: shown only to roles that need it, every view audited.
    vulnerability_notes: Mapped[Optional[str]] = mapped_column(Text)
    # Restricted: the whole record is for staff with a need (crm.visibility); others see that it exists.
    restricted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    preferred_channel: Mapped[Optional[str]] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    identities = relationship(
        "CustomerIdentity", back_populates="customer", order_by="CustomerIdentity.id"
    )
    addresses = relationship("Address", back_populates="customer", order_by="Address.id")

    __table_args__ = (
        # Only merged records are indexed: "who was merged into X" stays a look-up, and SQLite
        # (which keeps no statistics) cannot mistake `merged_into_id IS NULL`, true of almost
        # every customer, for a selective index and walk all customers in a search.
        Index("ix_customers_merged_into_id", "merged_into_id",
              sqlite_where=text("merged_into_id IS NOT NULL"),
              postgresql_where=text("merged_into_id IS NOT NULL")),
    )

    def identity_values(self, kind: str) -> list[str]:
        """Return this customer's normalised values of one identity kind, the main one first."""
        return [i.value for i in sorted((i for i in self.identities if i.kind == kind), key=lambda i: not i.main)]

    @property
    def has_verified_identity(self) -> bool:
        return any(i.verified for i in self.identities)

    @property
    def primary_email(self) -> Optional[str]:
        values = self.identity_values("email")
        return values[0] if values else None

    @property
    def primary_phone(self) -> Optional[str]:
        values = self.identity_values("phone")
        return values[0] if values else None

    @property
    def primary_address(self):
        mains = [a for a in self.addresses if a.main]
        return mains[0] if mains else (self.addresses[0] if self.addresses else None)


class CustomerNameTerm(db.Model):
    """One lower-cased word of a customer's name, so name search is an index range, not a scan."""

    __tablename__ = "customer_name_terms"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    term: Mapped[str] = mapped_column(String(100), primary_key=True)

    __table_args__ = (Index("ix_customer_name_terms_term", "term", "customer_id"),)


class CustomerIdentity(db.Model):
    """A way to recognise a customer: an email, a phone, a chat visitor, a portal account."""

    __tablename__ = "customer_identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(254))  # normalised: lower-case email, E.164 phone
    # Verified: proved by a sign-in link, confirmed by staff on a call, or imported from a trusted
    # system. Otherwise only claimed (typed into a chat or form, an email's From): never enough alone.
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where it came from: one of IDENTITY_SOURCES.
    source: Mapped[Optional[str]] = mapped_column(String(20))
    verified_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # The main email (or phone) of its kind: where staff and notices reach the customer first.
    main: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Email bounced: do not send to it again until someone checks it.
    undeliverable: Mapped[bool] = mapped_column(Boolean, default=False)
    undeliverable_reason: Mapped[Optional[str]] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer = relationship("Customer", back_populates="identities")

    __table_args__ = (UniqueConstraint("kind", "value"),)


class Address(db.Model):
    """A postal address; the postcode is kept normalised and as a spaceless search key."""

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    line1: Mapped[Optional[str]] = mapped_column(String(200))
    line2: Mapped[Optional[str]] = mapped_column(String(200))
    town: Mapped[Optional[str]] = mapped_column(String(100))
    postcode: Mapped[Optional[str]] = mapped_column(String(10))
    postcode_key: Mapped[Optional[str]] = mapped_column(String(10), index=True)
    uprn: Mapped[Optional[str]] = mapped_column(String(12), index=True)
    main: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer = relationship("Customer", back_populates="addresses")

    def one_line(self) -> str:
        return ", ".join(p for p in (self.line1, self.line2, self.town, self.postcode) if p)
