"""The unified timeline: the one write path every channel calls, and the paged read."""
import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import and_, or_, select, true

from ..batching import stage
from ..errors import ValidationFailed
from ..extensions import db
from ..models import CHANNELS, DIRECTIONS, OUTCOMES, CaseEvent, Contact, Customer, utcnow
from ..signals import contact_recorded, send_after_commit

# Entries of equal time are ordered by kind, then id, so a cursor is exact.
KIND_RANK = {"contact": 1, "case_event": 0}


def record_contact(
    customer: Customer,
    channel: str,
    *,
    direction: str = "inbound",
    summary: str = "",
    notes: Optional[str] = None,
    category: Optional[str] = None,
    outcome: str = "pending",
    agent=None,
    started_at: Optional[datetime] = None,
    ended_at: Optional[datetime] = None,
    occurred_at: Optional[datetime] = None,
    conversation=None,
    case=None,
) -> Contact:
    """Record one touch with a customer on any channel; the timeline shows it at once."""
    if channel not in CHANNELS:
        raise ValidationFailed("Unknown channel", {"channel": [f"must be one of {', '.join(CHANNELS)}"]})
    if direction not in DIRECTIONS:
        raise ValidationFailed("Unknown direction", {"direction": ["must be inbound or outbound"]})
    if outcome not in OUTCOMES:
        raise ValidationFailed("Unknown outcome", {"outcome": [f"must be one of {', '.join(OUTCOMES)}"]})
    if started_at and ended_at and ended_at < started_at:
        raise ValidationFailed("The call cannot end before it starts", {"ended_at": ["before started_at"]})
    contact = Contact(
        customer_id=customer.id,
        channel=channel,
        direction=direction,
        summary=(summary or category or channel)[:300],
        notes=notes,
        category=category,
        outcome=outcome,
        agent_id=getattr(agent, "id", None),
        started_at=started_at,
        ended_at=ended_at,
        occurred_at=occurred_at or started_at or utcnow(),
        conversation_id=getattr(conversation, "id", None),
        case_id=getattr(case, "id", None),
    )
    stage(contact)
    send_after_commit(contact_recorded, contact_id=contact.id, customer_id=customer.id, channel=channel)
    return contact


@dataclass(frozen=True)
class Cursor:
    """A position in a timeline: the last entry of the page before."""

    occurred_at: datetime
    kind: str
    id: int

    def encode(self) -> str:
        raw = f"{self.occurred_at.isoformat()}|{self.kind}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        try:
            padded = token + "=" * (-len(token) % 4)
            at, kind, ident = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
            when = datetime.fromisoformat(at)
            if when.tzinfo is None or kind not in KIND_RANK:
                raise ValueError
            return cls(when.astimezone(timezone.utc), kind, int(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise ValidationFailed("Invalid cursor", {"before": ["not a cursor from this API"]}) from None


def _after_cursor(model, kind: str, cursor: Optional[Cursor]):
    """Condition: rows of this kind that sort after the cursor (newest first).

    Always a range on occurred_at (plus a tie-break filter), so the (customer_id, occurred_at,
    id) index starts at the cursor however deep it is; an OR of "older" and "same time, lower
    id" makes both databases walk every newer entry first (see bench/README.md).
    """
    if cursor is None:
        return true()
    at = cursor.occurred_at
    if KIND_RANK[kind] < KIND_RANK[cursor.kind]:
        return model.occurred_at <= at  # at the same time this kind sorts after the cursor's
    if KIND_RANK[kind] > KIND_RANK[cursor.kind]:
        return model.occurred_at < at
    return and_(model.occurred_at <= at, or_(model.occurred_at < at, model.id < cursor.id))


def timeline_page(customer_id: int, limit: int = 20, before: Optional[str] = None):
    """Return (entries, next_cursor) newest first; entries are Contacts and CaseEvents."""
    limit = max(1, min(int(limit), 100))
    cursor = Cursor.decode(before) if before else None
    contacts = db.session.scalars(
        select(Contact)
        .where(Contact.customer_id == customer_id, _after_cursor(Contact, "contact", cursor))
        .order_by(Contact.occurred_at.desc(), Contact.id.desc())
        .limit(limit + 1)
    ).all()
    events = db.session.scalars(
        select(CaseEvent)
        .where(CaseEvent.customer_id == customer_id, _after_cursor(CaseEvent, "case_event", cursor))
        .order_by(CaseEvent.occurred_at.desc(), CaseEvent.id.desc())
        .limit(limit + 1)
    ).all()
    merged = [("contact", c) for c in contacts] + [("case_event", e) for e in events]
    merged.sort(key=lambda pair: (pair[1].occurred_at, KIND_RANK[pair[0]], pair[1].id), reverse=True)
    page = merged[:limit]
    next_cursor = None
    if len(merged) > limit:
        kind, row = page[-1]
        next_cursor = Cursor(row.occurred_at, kind, row.id).encode()
    return page, next_cursor


def describe_event(event: CaseEvent) -> str:
    """Return a one-line summary of a case event for the timeline."""
    from ..labels import label  # noqa: PLC0415  (one place for the words of stored codes)

    ref = event.case.reference if event.case else ""
    labels = {
        "created": f"Case {ref} raised: {event.case.title if event.case else ''}",
        "routed": f"Case {ref} routed to {event.to_value}",
        "rerouted": f"Case {ref} re-routed from {event.from_value} to {event.to_value}",
        "assigned": f"Case {ref} assigned to {event.to_value}",
        "status_changed": f"Case {ref} {label(event.from_value, 'case_status')} → {label(event.to_value, 'case_status')}",
        "note": f"Internal note on {ref}",
        "public_update": f"Update on {ref}",
        "contact_attached": f"Contact added to case {ref}",
        "merged": f"Case {ref} merged into {event.to_value}",
        "merged_in": f"Case {event.from_value} merged into {ref}",
        "split": f"Contact split from {ref} into {event.to_value}",
        "split_from": f"Case {ref} split from {event.from_value}",
        "sla_breached": f"Case {ref} passed its resolution target",
        "first_response_breached": f"Case {ref} passed its first-response target",
    }
    return labels.get(event.kind, f"Case {ref}: {event.kind.replace('_', ' ')}")
