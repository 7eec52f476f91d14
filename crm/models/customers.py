"""Customers (residents), their identities and addresses."""
from datetime import datetime
from typing import Optional

from sqlalchemy import ForeignKey, String, Boolean, Text, UniqueConstraint, Index, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

IDENTITY_KINDS = ("email", "phone", "chat", "portal")


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
    name_terms = relationship("CustomerNameTerm", cascade="all, delete-orphan")

    __table_args__ = (
        # Only merged records are indexed: "who was merged into X" stays a look-up, and SQLite
        # (which keeps no statistics) cannot mistake `merged_into_id IS NULL`, true of almost
        # every customer, for a selective index and walk all customers in a search.
        Index("ix_customers_merged_into_id", "merged_into_id",
              sqlite_where=text("merged_into_id IS NOT NULL"),
              postgresql_where=text("merged_into_id IS NOT NULL")),
    )

    def identity_values(self, kind: str) -> list[str]:
        """Return this customer's normalised values of one identity kind."""
        return [i.value for i in self.identities if i.kind == kind]

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
        return self.addresses[0] if self.addresses else None


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
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer = relationship("Customer", back_populates="addresses")

    def one_line(self) -> str:
        return ", ".join(p for p in (self.line1, self.line2, self.town, self.postcode) if p)
