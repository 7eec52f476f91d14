"""Open cases and record their events; every channel raises cases through here."""
from typing import Optional

from sqlalchemy import select

from ..errors import NotFound, ValidationFailed
from ..extensions import db
from ..models import PRIORITIES, Case, CaseEvent, Category, Service, utcnow
from ..signals import case_event_recorded, send_after_commit


def reference_for(case_id: int) -> str:
    """Return the human reference of a case number, e.g. CAS-000123."""
    return f"CAS-{case_id:06d}"


def find_service(code: str) -> Service:
    """Return the active service with this code, or refuse."""
    service = db.session.scalar(select(Service).where(Service.code == code, Service.active.is_(True)))
    if service is None:
        raise ValidationFailed("Unknown service", {"service": [f"no service with code {code!r}"]})
    return service


def get_case(reference: str) -> Case:
    """Return the case with this reference or raise NotFound."""
    case = db.session.scalar(select(Case).where(Case.reference == (reference or "").upper()))
    if case is None:
        raise NotFound(f"No case {reference}")
    return case


def add_event(case: Case, kind: str, actor=None, *, from_value=None, to_value=None,
              body=None, public=False, occurred_at=None) -> CaseEvent:
    """Append an event to a case's history (and so to the customer's timeline)."""
    event = CaseEvent(
        case_id=case.id,
        customer_id=case.customer_id,
        kind=kind,
        actor_id=getattr(actor, "id", None),
        from_value=from_value,
        to_value=to_value,
        body=body,
        public=public,
        occurred_at=occurred_at or utcnow(),
    )
    db.session.add(event)
    db.session.flush()
    send_after_commit(case_event_recorded, case_event_id=event.id, case_id=case.id, kind=kind)
    return event


def open_case(customer, service_code: str, category: str, title: str, description: str = "",
              *, priority: str = "normal", actor=None, contact=None, source_channel=None,
              location_address: Optional[str] = None, latitude=None, longitude=None) -> Case:
    """Raise a case for a customer with a service; it gets its reference at once."""
    service = find_service(service_code)
    if priority not in PRIORITIES:
        raise ValidationFailed("Unknown priority", {"priority": [f"must be one of {', '.join(PRIORITIES)}"]})
    known = {c.code for c in service.categories}
    if known and category not in known:
        raise ValidationFailed("Unknown category for this service",
                               {"category": [f"must be one of {', '.join(sorted(known))}"]})
    if not (title or "").strip():
        raise ValidationFailed("A case needs a title", {"title": ["required"]})
    now = utcnow()
    case = Case(
        customer_id=customer.id,
        service_id=service.id,
        category=category,
        title=title.strip()[:200],
        description=description or "",
        priority=priority,
        status="new",
        source_channel=source_channel or getattr(contact, "channel", None),
        raised_by_contact_id=getattr(contact, "id", None),
        location_address=location_address,
        latitude=latitude,
        longitude=longitude,
        created_at=now,
    )
    db.session.add(case)
    db.session.flush()
    case.reference = reference_for(case.id)
    if contact is not None:
        contact.case_id = case.id
    add_event(case, "created", actor, to_value="new", body=description or None, occurred_at=now)
    add_event(case, "routed", actor, to_value=service.name, occurred_at=now)
    return case
