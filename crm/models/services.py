"""The council's services, their work queues and the rules that route work to them."""
from typing import Optional

from sqlalchemy import ForeignKey, String, Boolean, Integer, Text, UniqueConstraint, JSON
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db

QUEUE_CHANNELS = ("email", "webchat", "phone", "cases")


class Service(db.Model):
    """A back-office service that owns cases (Highways, Adult Social Care, ...)."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[Optional[str]] = mapped_column(Text)
    sla_hours: Mapped[int] = mapped_column(Integer, default=40)
    # Cases of a sensitive service are visible only to roles that need them.
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    email_address: Mapped[Optional[str]] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    categories = relationship("Category", back_populates="service", order_by="Category.name")
    queues = relationship("Queue", back_populates="service")


class Category(db.Model):
    """A kind of enquiry within a service (pothole, missed bin, ...)."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), index=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    service = relationship("Service", back_populates="categories")


class Queue(db.Model):
    """A list of work waiting for people: email, chats or cases of a service."""

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(20))
    service_id: Mapped[Optional[int]] = mapped_column(ForeignKey("services.id"), index=True)
    # Email: unanswered longer than this is flagged to supervisors.
    target_response_minutes: Mapped[int] = mapped_column(Integer, default=24 * 60)

    service = relationship("Service", back_populates="queues")


class RoutingRule(db.Model):
    """Category (optionally keywords) to service, queue, priority and SLA; lowest position wins."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=100)
    category_code: Mapped[str] = mapped_column(String(60), index=True)
    keywords: Mapped[Optional[str]] = mapped_column(String(500))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    queue_id: Mapped[Optional[int]] = mapped_column(ForeignKey("queues.id"))
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    sla_hours: Mapped[Optional[int]] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    service = relationship("Service")
    queue = relationship("Queue")


class FormDefinition(db.Model):
    """A public web form of a service, defined as data (fields, types, options).

    `fields` is a list of questions, each {"name", "label", "type", "required"?, "hint"?,
    "options"? (radios, checkboxes, select), "error"? (message when a required answer is
    missing), "location"? (true: the answer is where the problem is)}; types are text,
    textarea, email, tel, radios, checkboxes, select, date and file (a photo).
    crm.channels.web_form.parse_fields checks and reads them.
    """

    __tablename__ = "form_definitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[Optional[str]] = mapped_column(Text)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    category_code: Mapped[str] = mapped_column(String(60))
    fields: Mapped[list] = mapped_column(JSON, default=list)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    # Ask each question on a page of its own, then "check your answers" (GOV.UK pattern).
    one_question_per_page: Mapped[bool] = mapped_column(Boolean, default=False)
    # "What happens next", shown on the confirmation page and in the confirmation email.
    next_steps: Mapped[Optional[str]] = mapped_column(Text)

    service = relationship("Service")
