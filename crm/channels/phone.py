"""The phone channel: an agent logs a call, optionally raising a case."""
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from sqlalchemy import select

from .. import visibility
from ..cases.service import open_case
from ..customers.identity import live_customer, resolve_customer, set_case_contact
from ..customers.timeline import record_contact
from ..errors import NotFound, ValidationFailed
from ..extensions import db
from ..models import Category, Customer, utcnow
from .registry import Channel


class PhoneChannel(Channel):
    """Calls: an agent logs them; the council cannot ring a resident from here, so nothing is delivered.

    Its pages are the console's call form (crm.console) and POST /api/v1/contacts (crm.api): nothing of its own
    to register.
    """

    name = "phone"


channel = PhoneChannel()


@dataclass
class CaseRequest:
    """What an agent fills in to raise a case from a call."""

    service: str
    category: str
    title: str
    description: str = ""
    priority: str = "normal"


def _category_name(code: str) -> str:
    """Return the words staff know a call's reason by (the category's name), not its code."""
    name = db.session.scalar(select(Category.name).where(Category.code == code).limit(1))
    return name or code.replace("_", " ")


def log_call(agent, *, customer_id: Optional[int] = None, caller: Optional[dict] = None,
             direction: str = "inbound", category: Optional[str] = None, notes: str = "",
             outcome: str = "resolved_first_time", started_at: Optional[datetime] = None,
             ended_at: Optional[datetime] = None, case: Optional[CaseRequest] = None,
             channel: str = "phone"):
    """Record a call on the caller's timeline; returns (contact, case or None)."""
    if customer_id is not None:
        customer = live_customer(db.session.get(Customer, customer_id))
        if customer is None:
            raise NotFound(f"No customer {customer_id}", {"customer_id": ["unknown customer"]})
        visibility.check_customer(agent, customer)
    elif caller:
        # Staff who checked who is calling say so ("confirmed"): only then are the details verified.
        customer = resolve_customer(caller.get("name"), caller.get("email"), caller.get("phone"),
                                    source="phone", verified=bool(caller.get("confirmed")))
    else:
        raise ValidationFailed("Say who called", {"customer_id": ["give customer_id or caller"]})
    if case is not None and outcome in ("pending", "resolved_first_time"):
        outcome = "case_raised"
    if outcome == "case_raised" and case is None:
        raise ValidationFailed("Outcome case_raised needs the case", {"case": ["required for case_raised"]})
    ended_at = ended_at or (utcnow() if started_at else None)
    summary = f"Call: {_category_name(category)}" if category else "Call"
    contact = record_contact(
        customer, channel, direction=direction, summary=summary, notes=notes, category=category,
        outcome=outcome, agent=agent, started_at=started_at, ended_at=ended_at,
    )
    raised = None
    if case is not None:
        raised = open_case(customer, case.service, case.category, case.title, case.description,
                           priority=case.priority, actor=agent, contact=contact)
        if caller and customer_id is None:
            set_case_contact(raised, caller.get("email"), caller.get("phone"))
        db.session.flush()
    return contact, raised
