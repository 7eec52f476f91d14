"""Read side of cases: who may see and work a case, and the work list (the API's shapes are in schemas.py)."""
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


def active_services() -> list[Service]:
    """Return the active services, by name."""
    return db.session.scalars(select(Service).where(Service.active.is_(True)).order_by(Service.name)).all()
