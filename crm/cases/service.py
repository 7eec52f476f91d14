"""Open, route, work, merge and split cases; every channel raises and changes cases through here.

Functions here never commit: the view, API endpoint, CLI command or job that calls them does.
Each change is a CaseEvent (who, when, from, to), so the case history and the customer's
timeline show it; notifications go out after the commit.
"""
import logging
import math
from typing import Optional

from sqlalchemy import select, update

from .. import visibility
from ..audit import audit
from ..auth.roles import SERVICE_OFFICER
from ..batching import remembered, stage
from ..errors import Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..models import (
    PRIORITIES, Attachment, Case, CaseEvent, Contact, Conversation, Service, User, utcnow,
)
from ..signals import case_event_recorded, send_after_commit
from . import lifecycle, sla
from .notify import case_routed, notify_customer_of_resolution, notify_customer_of_update
from .routing import Route, default_queue, higher_priority, route

log = logging.getLogger(__name__)


def reference_for(case_id: int) -> str:
    """Return the human reference of a case number, e.g. CAS-000123."""
    return f"CAS-{case_id:06d}"


def find_service(code: str) -> Service:
    """Return the active service with this code, or refuse."""
    service = remembered(("service", code), lambda: db.session.scalar(
        select(Service).where(Service.code == code, Service.active.is_(True))))
    if service is None:
        raise ValidationFailed("Unknown service", {"service": [f"no service with code {code!r}"]})
    return service


def get_case(reference: str) -> Case:
    """Return the case with this reference or raise NotFound."""
    case = db.session.scalar(select(Case).where(Case.reference == (reference or "").strip().upper()))
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
        from_value=None if from_value is None else str(from_value)[:120],
        to_value=None if to_value is None else str(to_value)[:120],
        body=body,
        public=public,
        occurred_at=occurred_at or utcnow(),
    )
    stage(event)
    send_after_commit(case_event_recorded, case_event_id=event.id, case_id=case.id, kind=kind)
    return event


def _route_summary(case: Case) -> str:
    queue = f" queue {case.queue.name}," if case.queue else ""
    due = case.sla_due_at.strftime("%d %b %Y %H:%M UTC") if case.sla_due_at else "none"
    return f"{case.service.name}:{queue} priority {case.priority}, {case.sla_hours} working hours, due {due}"


def open_case(customer, service_code: Optional[str], category: str, title: str, description: str = "",
              *, priority: Optional[str] = None, actor=None, contact=None, source_channel=None,
              location_address: Optional[str] = None, latitude=None, longitude=None) -> Case:
    """Raise a case for a customer; routing rules settle its service, queue, priority and SLA.

    `service_code` may be None: the category's routing rule (or owning service) decides.
    An explicit priority is kept unless the rule asks for a more urgent one.
    """
    chosen = None
    if service_code:
        chosen = find_service(service_code)
        known = {c.code for c in chosen.categories}
        if known and category not in known:
            raise ValidationFailed("Unknown category for this service",
                                   {"category": [f"must be one of {', '.join(sorted(known))}"]})
    if priority is not None and priority not in PRIORITIES:
        raise ValidationFailed("Unknown priority", {"priority": [f"must be one of {', '.join(PRIORITIES)}"]})
    if not (title or "").strip():
        raise ValidationFailed("A case needs a title", {"title": ["required"]})
    _check_location(latitude, longitude)
    destination = route(category, f"{title}\n{description or ''}", chosen)
    now = utcnow()
    first_due, resolution_due = sla.targets(now, destination.sla_hours)
    case = Case(
        customer_id=customer.id,
        service_id=destination.service.id,
        queue_id=destination.queue.id if destination.queue else None,
        category=category,
        title=title.strip()[:200],
        description=description or "",
        priority=higher_priority(priority or "normal", destination.priority) if destination.rule
        else (priority or "normal"),
        status="new",
        source_channel=source_channel or getattr(contact, "channel", None),
        raised_by_contact_id=getattr(contact, "id", None),
        location_address=(location_address or None) and location_address[:300],
        latitude=latitude,
        longitude=longitude,
        sla_hours=destination.sla_hours,
        first_response_due_at=first_due,
        sla_due_at=resolution_due,
        created_at=now,
    )
    # The objects too, not just their ids: a case staged in a batch is not loaded from the database.
    case.customer, case.service, case.queue = customer, destination.service, destination.queue
    stage(case)
    case.reference = reference_for(case.id)
    if contact is not None:
        contact.case_id = case.id
    add_event(case, "created", actor, to_value="new", body=description or None, occurred_at=now)
    add_event(case, "routed", actor, to_value=destination.service.name, body=_route_summary(case), occurred_at=now)
    send_after_commit(case_routed, case_id=case.id, service_id=case.service_id, queue_id=case.queue_id,
                      assignee_id=None, rerouted=False)
    return case


def _check_location(latitude, longitude) -> None:
    if (latitude is None) != (longitude is None):
        raise ValidationFailed("Give both latitude and longitude", {"latitude": ["needs longitude too"]})
    if latitude is not None and not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise ValidationFailed("Location out of range", {"latitude": ["not a point on Earth"]})


def change_status(case: Case, to_status: str, actor=None, *, reason: Optional[str] = None) -> CaseEvent:
    """Move a case along its lifecycle (refused with 409/422 when illegal) and record it."""
    now = utcnow()
    previous = lifecycle.apply_status(case, to_status, now)
    kind = "reopened" if previous == "resolved" and to_status == "open" else "status_changed"
    # How it was resolved is the resident's answer: shown on /track and emailed, like a public update.
    resolution = to_status == "resolved" and bool((reason or "").strip())
    event = add_event(case, kind, actor, from_value=previous, to_value=to_status, body=reason, occurred_at=now,
                      public=resolution)
    if resolution:
        notify_customer_of_resolution(case, event)
    return event


def reopen_case(case: Case, actor=None, reason: Optional[str] = None) -> CaseEvent:
    """Reopen a resolved case within its window (a resident's "this is not fixed")."""
    return change_status(case, "open", actor, reason=reason)


def assign_case(case: Case, assignee: Optional[User], actor=None) -> Optional[CaseEvent]:
    """Give a case to an officer of its service (or back to the team with None)."""
    if assignee is not None:
        if not assignee.active:
            raise ValidationFailed("That account is deactivated", {"assignee": ["inactive user"]})
        if assignee.role == SERVICE_OFFICER and assignee.service_id != case.service_id:
            raise ValidationFailed(f"{assignee.name} does not work for {case.service.name}",
                                   {"assignee": ["not an officer of the case's service"]})
    if (assignee.id if assignee else None) == case.assignee_id:
        return None
    previous = case.assignee.name if case.assignee else None
    case.assignee_id = assignee.id if assignee else None
    case.assignee = assignee
    event = add_event(case, "assigned", actor, from_value=previous,
                      to_value=assignee.name if assignee else f"{case.service.name} team")
    send_after_commit(case_routed, case_id=case.id, service_id=case.service_id, queue_id=case.queue_id,
                      assignee_id=case.assignee_id, rerouted=False)
    if assignee is not None:
        _owe_owner_notification(case, rerouted=False)
    return event


def reroute_case(case: Case, service_code: str, actor=None, *, category: Optional[str] = None,
                 reason: Optional[str] = None) -> CaseEvent:
    """Send a case to another service: history kept, queue and owner reset, new owner told."""
    if case.status in lifecycle.DONE_STATUSES or case.merged_into_id:
        raise Conflict(f"Case {case.reference} is {case.status}; reopen it before re-routing",
                       {"service": ["case is not open"]})
    service = find_service(service_code)
    if service.id == case.service_id and (category is None or category == case.category):
        raise Conflict(f"Case {case.reference} is already with {service.name}", {"service": ["same service"]})
    if category is not None:
        known = {c.code for c in service.categories}
        if known and category not in known:
            raise ValidationFailed("Unknown category for this service",
                                   {"category": [f"must be one of {', '.join(sorted(known))}"]})
    else:
        known = {c.code for c in service.categories}
        if known and case.category not in known:
            # The old category means nothing to the new service: take its first one.
            category = sorted(known)[0]
    previous = case.service
    destination = route(category or case.category, f"{case.title}\n{case.description}", service)
    if destination.service.id != service.id:
        # A rule would send it straight back; the officer's explicit choice wins here.
        destination = Route(service, default_queue(service), case.priority, service.sla_hours, None)
    # The SLA targets stand: the resident was promised a date, whichever service keeps it.
    case.service_id = service.id
    case.service = service
    case.queue_id = destination.queue.id if destination.queue else None
    case.queue = destination.queue
    if category:
        case.category = category
    case.assignee_id = None
    case.assignee = None
    event = add_event(case, "rerouted", actor, from_value=previous.name, to_value=service.name, body=reason)
    audit(actor, "case.reroute", "case", case.id, reference=case.reference, from_service=previous.code,
          to_service=service.code, reason=reason)
    send_after_commit(case_routed, case_id=case.id, service_id=service.id, queue_id=case.queue_id,
                      assignee_id=None, rerouted=True)
    _owe_owner_notification(case, rerouted=True)
    return event


def _owe_owner_notification(case: Case, rerouted: bool) -> None:
    """Owe the new owner their email in this transaction (the outbox sends it after the commit)."""
    from ..outbox import enqueue_after_commit  # noqa: PLC0415
    from .jobs import notify_owner_job  # noqa: PLC0415  (jobs imports this module)

    enqueue_after_commit(notify_owner_job, case.id, rerouted)


def add_note(case: Case, body: str, actor=None) -> CaseEvent:
    """Record an internal note: staff see it, the resident never does."""
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("A note needs some text", {"note": ["required"]})
    return add_event(case, "note", actor, body=body[:20000], public=False)


def post_public_update(case: Case, body: str, actor=None) -> CaseEvent:
    """Tell the resident how their case is going; it counts as the first response, and is emailed."""
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("An update needs some text", {"public_update": ["required"]})
    if case.merged_into_id:
        raise Conflict(f"Case {case.reference} was merged; update the case it was merged into",
                       {"public_update": ["case merged"]}, code="case_merged")
    event = add_event(case, "public_update", actor, body=body[:20000], public=True)
    if case.first_responded_at is None:
        case.first_responded_at = event.occurred_at
    notify_customer_of_update(case, event)
    return event


def attach_contact(case: Case, contact: Contact, actor=None) -> CaseEvent:
    """Link a contact to an existing case instead of raising a duplicate (known-issue deflection)."""
    if case.merged_into_id:
        case = db.session.get(Case, case.merged_into_id)
    if isinstance(actor, User):
        visibility.check_contact_move(actor, contact, case)
    if case.status == "closed":
        raise Conflict(f"Case {case.reference} is closed", {"case": ["closed"]})
    contact.case_id = case.id
    if contact.outcome == "pending":
        contact.outcome = "case_raised"
    reporter = contact.customer.name if contact.customer else "someone"
    return add_event(case, "contact_attached", actor, to_value=str(contact.id),
                     body=f"Also reported by {reporter} ({contact.channel})")


def merge_cases(source: Case, target: Case, actor=None, reason: Optional[str] = None) -> Case:
    """Fold a duplicate case into another: its contacts, conversations and files move, its history stays."""
    if source.id == target.id:
        raise ValidationFailed("A case cannot be merged into itself", {"target": ["same case"]})
    if isinstance(actor, User):
        visibility.check_case_merge(actor, source, target)
    if source.merged_into_id or target.merged_into_id:
        raise Conflict("One of these cases has already been merged into another", code="case_merged")
    if target.status == "closed":
        raise Conflict(f"Case {target.reference} is closed; merge into an open case", {"target": ["closed"]})
    moved = {}
    for model in (Contact, Conversation, Attachment):
        result = db.session.execute(update(model).where(model.case_id == source.id)
                                    .values(case_id=target.id).execution_options(synchronize_session=False))
        moved[model.__tablename__] = result.rowcount
    previous_status = source.status
    source.merged_into_id = target.id
    source.status = "closed"
    source.closed_at = utcnow()
    source.sla_at_risk = False
    target.priority = higher_priority(source.priority, target.priority)
    add_event(source, "merged", actor, from_value=previous_status, to_value=target.reference, body=reason)
    add_event(target, "merged_in", actor, from_value=source.reference, to_value=target.reference,
              body=f"{source.reference} ({source.customer.name}): {source.title}")
    audit(actor, "case.merge", "case", target.id, source=source.reference, target=target.reference,
          moved=moved, reason=reason)
    return target


def split_contact(case: Case, contact: Contact, actor=None, *, title: Optional[str] = None,
                  service_code: Optional[str] = None, category: Optional[str] = None) -> Case:
    """Take a contact off a case into a case of its own (it was a different matter)."""
    if contact.case_id != case.id:
        raise ValidationFailed(f"Contact {contact.id} is not on case {case.reference}",
                               {"contact_id": ["not on this case"]})
    if isinstance(actor, User):
        visibility.check_contact_move(actor, contact)
    new_case = open_case(
        contact.customer, service_code or (None if category else case.service.code), category or case.category,
        title or contact.summary or case.title, contact.notes or "", actor=actor, contact=contact,
        source_channel=contact.channel)
    add_event(case, "split", actor, from_value=case.reference, to_value=new_case.reference,
              body=f"Contact {contact.id} moved to {new_case.reference}")
    add_event(new_case, "split_from", actor, from_value=case.reference, to_value=new_case.reference)
    audit(actor, "case.split", "case", case.id, contact_id=contact.id, new_case=new_case.reference)
    return new_case


EARTH_RADIUS_M = 6_371_000


def distance_m(lat1, lon1, lat2, lon2) -> float:
    """Return the great-circle distance in metres between two points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def nearby_open_cases(category: str, *, latitude=None, longitude=None, address: Optional[str] = None,
                      radius_m: float = 150, limit: int = 5, viewer=None) -> list[Case]:
    """Suggest open cases of the same category near a point (or at the same address) before raising one.

    With a viewer, only cases the visibility policy lets them read are suggested.
    """
    query = select(Case).where(Case.category == category, Case.status.in_(lifecycle.OPEN_STATUSES),
                               Case.merged_into_id.is_(None))
    if viewer is not None:
        query = query.where(visibility.case_condition(viewer))
    if latitude is not None and longitude is not None:
        # A bounding box the indexes can use, then the exact distance.
        dlat = radius_m / 111_320
        dlon = radius_m / (111_320 * max(math.cos(math.radians(latitude)), 0.01))
        rows = db.session.scalars(query.where(
            Case.latitude.between(latitude - dlat, latitude + dlat),
            Case.longitude.between(longitude - dlon, longitude + dlon)).limit(200)).all()
        near = [(distance_m(latitude, longitude, c.latitude, c.longitude), c) for c in rows]
        return [c for d, c in sorted(near, key=lambda pair: pair[0]) if d <= radius_m][:limit]
    if address and address.strip():
        return db.session.scalars(query.where(Case.location_address.ilike(address.strip()))
                                  .order_by(Case.created_at.desc()).limit(limit)).all()
    return []


def mark_sla_states(now=None) -> dict:
    """Flag open cases that breached or are near their targets; each breach is an event once."""
    now = now or utcnow()
    threshold = sla.at_risk_threshold(now)
    counts = {"breached": 0, "first_response_breached": 0, "at_risk": 0, "cleared": 0}
    open_cases = select(Case).where(Case.status.in_(lifecycle.OPEN_STATUSES), Case.merged_into_id.is_(None))
    for case in db.session.scalars(open_cases.where(Case.sla_breached.is_(False), Case.sla_due_at <= now)):
        case.sla_breached = True
        case.sla_at_risk = True
        add_event(case, "sla_breached", None, to_value=case.sla_due_at.isoformat(), occurred_at=now)
        counts["breached"] += 1
    for case in db.session.scalars(open_cases.where(
            Case.first_response_breached.is_(False), Case.first_responded_at.is_(None),
            Case.first_response_due_at <= now)):
        case.first_response_breached = True
        add_event(case, "first_response_breached", None, to_value=case.first_response_due_at.isoformat(),
                  occurred_at=now)
        counts["first_response_breached"] += 1
    for case in db.session.scalars(open_cases.where(Case.sla_at_risk.is_(False), Case.sla_due_at <= threshold)):
        case.sla_at_risk = True
        counts["at_risk"] += 1
    # A due date moved later (re-routing, a reopen) can take a case out of danger.
    for case in db.session.scalars(open_cases.where(Case.sla_at_risk.is_(True), Case.sla_breached.is_(False),
                                                    Case.sla_due_at > threshold)):
        case.sla_at_risk = False
        counts["cleared"] += 1
    return counts


def close_resolved_after_window(now=None) -> int:
    """Close resolved cases whose reopen window has passed; return how many."""
    now = now or utcnow()
    cutoff = now - lifecycle.reopen_window()
    closed = 0
    for case in db.session.scalars(select(Case).where(Case.status == "resolved", Case.resolved_at < cutoff)):
        change_status(case, "closed", None, reason="Closed automatically after the reopen window")
        closed += 1
    return closed


__all__ = [
    "reference_for", "find_service", "get_case", "add_event", "open_case", "change_status", "reopen_case",
    "assign_case", "reroute_case", "add_note", "post_public_update", "attach_contact", "merge_cases",
    "split_contact", "nearby_open_cases", "mark_sla_states", "close_resolved_after_window",
]
