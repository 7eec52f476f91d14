"""Read side of cases: who may see and work a case, the work list, and the API's shapes."""
from typing import Optional

from sqlalchemy import select

from .. import visibility
from ..extensions import db
from ..models import Case, Service, User, utcnow
from . import lifecycle, sla


def can_view_service(user: User, service: Service) -> bool:
    """Say whether a member of staff may read a service's cases and mail (the visibility policy's rule)."""
    return visibility.can_see_service(user, service)


def can_view(user: User, case: Case) -> bool:
    """Say whether a member of staff may read a case."""
    return visibility.can_see_case(user, case)


def can_work(user: User, case: Case) -> bool:
    """Say whether a member of staff may change a case's status, owner, service or post updates."""
    return visibility.can_work_case(user, case)


def check_view(user: User, case: Case) -> None:
    """Refuse (Forbidden) a case the user may not read; audit reads of sensitive cases."""
    visibility.check_case(user, case)


def hidden_services(user: User) -> list[int]:
    """Return the ids of sensitive services whose cases this user may not list."""
    return visibility.hidden_service_ids(user)


def work_list(service_id: Optional[int], *, status: Optional[str] = None, at_risk: bool = False,
              assignee_id: Optional[int] = None, unassigned: bool = False, page: int = 1,
              per_page: int = 50, hidden_service_ids=(), now=None, viewer=None) -> tuple[list[Case], bool]:
    """Return one page of a service's cases, most urgent SLA first, and whether more follow.

    No status means all open work. Paging looks one row ahead rather than counting, so a
    service with 100,000 open cases pages as fast as one with ten.
    """
    query = select(Case).where(Case.merged_into_id.is_(None))
    if service_id is not None:
        query = query.where(Case.service_id == service_id)
    if hidden_service_ids:
        query = query.where(Case.service_id.notin_(hidden_service_ids))
    if viewer is not None:
        query = query.where(visibility.case_condition(viewer))
    if status in (None, "open_all"):
        query = query.where(Case.status.in_(lifecycle.OPEN_STATUSES))
    else:
        query = query.where(Case.status == status)
    if at_risk:
        query = query.where(Case.sla_due_at <= sla.at_risk_threshold(now or utcnow()))
    if assignee_id is not None:
        query = query.where(Case.assignee_id == assignee_id)
    elif unassigned:
        query = query.where(Case.assignee_id.is_(None))
    rows = db.session.scalars(query.order_by(Case.sla_due_at, Case.id)
                              .offset((page - 1) * per_page).limit(per_page + 1)).all()
    return rows[:per_page], len(rows) > per_page


def iso(value) -> Optional[str]:
    """Return an ISO 8601 instant with offset, or None."""
    return value.isoformat() if value else None


def serialise_event(event) -> dict:
    """Return the API form of a case event."""
    return {
        "id": event.id,
        "kind": event.kind,
        "actor": event.actor.name if event.actor else None,
        "from": event.from_value,
        "to": event.to_value,
        "body": event.body,
        "public": event.public,
        "occurred_at": event.occurred_at.isoformat(),
    }


def _assignee(case: Case) -> Optional[dict]:
    return {"id": case.assignee.id, "name": case.assignee.name} if case.assignee else None


def serialise_summary(case: Case) -> dict:
    """Return a case as a row of a work list."""
    return {
        "reference": case.reference,
        "title": case.title,
        "category": case.category,
        "status": case.status,
        "priority": case.priority,
        "service": case.service.code,
        "assignee": _assignee(case),
        "sla_due_at": iso(case.sla_due_at),
        "sla_at_risk": bool(case.sla_at_risk),
        "sla_breached": bool(case.sla_breached),
        "created_at": iso(case.created_at),
    }


def serialise_case(case: Case, *, with_events: bool = True) -> dict:
    """Return the API form of a case with its history (staff see notes and public updates)."""
    merged_into = db.session.get(Case, case.merged_into_id) if case.merged_into_id else None
    body = serialise_summary(case) | {
        "customer_id": case.customer_id,
        "customer_name": case.customer.name,
        "service_name": case.service.name,
        "queue": case.queue.code if case.queue else None,
        "description": case.description,
        "source_channel": case.source_channel,
        "location": ({"address": case.location_address, "lat": case.latitude, "long": case.longitude}
                     if case.location_address or case.latitude is not None else None),
        "sla_hours": case.sla_hours,
        "first_response_due_at": iso(case.first_response_due_at),
        "first_responded_at": iso(case.first_responded_at),
        "resolved_at": iso(case.resolved_at),
        "closed_at": iso(case.closed_at),
        "merged_into": merged_into.reference if merged_into else None,
        "allowed_transitions": lifecycle.allowed_next(case),
    }
    if with_events:
        body["events"] = [serialise_event(e) for e in case.events]
    return body


def active_services() -> list[Service]:
    """Return the active services, by name."""
    return db.session.scalars(select(Service).where(Service.active.is_(True)).order_by(Service.name)).all()
