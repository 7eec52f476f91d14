"""Legal holds: while one is live on a customer or a case, nothing of it is erased or deleted."""
from typing import Iterable, Optional

from sqlalchemy import or_, select

from ..audit import audit
from ..errors import Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..models import Case, Customer, LegalHold, utcnow


def place_hold(actor, reason: str, customer: Optional[Customer] = None, case: Optional[Case] = None,
               reference: Optional[str] = None) -> LegalHold:
    """Put a customer or a case under a legal hold; audited."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the hold is placed", {"reason": ["required"]})
    if (customer is None) == (case is None):
        raise ValidationFailed("A hold is on one customer or one case", {"target": ["customer or case"]})
    hold = LegalHold(customer_id=customer.id if customer else None, case_id=case.id if case else None,
                     reason=reason[:2000], reference=(reference or "").strip()[:100] or None, placed_by_id=actor.id)
    db.session.add(hold)
    db.session.flush()
    audit(actor, "records.hold.place", "customer" if customer else "case", customer.id if customer else case.id,
          hold_id=hold.id, reason=hold.reason, request_reference=hold.reference)
    return hold


def release_hold(actor, hold_id: int, reason: str) -> LegalHold:
    """Release a live hold; audited."""
    hold = db.session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound("No such legal hold")
    if hold.released_at is not None:
        raise Conflict("This hold has already been released")
    hold.released_at = utcnow()
    hold.released_by_id = actor.id
    audit(actor, "records.hold.release", "customer" if hold.customer_id else "case",
          hold.customer_id or hold.case_id, hold_id=hold.id, reason=(reason or "").strip()[:2000] or None)
    return hold


def live_holds(customer_ids: Iterable[int]) -> list[LegalHold]:
    """Return the live holds on these customers or on any of their cases."""
    ids = list(customer_ids)
    case_ids = select(Case.id).where(Case.customer_id.in_(ids))
    return list(db.session.scalars(select(LegalHold).where(
        LegalHold.released_at.is_(None),
        or_(LegalHold.customer_id.in_(ids), LegalHold.case_id.in_(case_ids))).order_by(LegalHold.id)))


def held_customer_ids():
    """Return a subquery of customer ids under a live hold (themselves, not their cases)."""
    return select(LegalHold.customer_id).where(LegalHold.released_at.is_(None), LegalHold.customer_id.is_not(None))


def held_case_ids():
    """Return a subquery of case ids under a live hold, directly or through their customer."""
    direct = select(LegalHold.case_id).where(LegalHold.released_at.is_(None), LegalHold.case_id.is_not(None))
    via_customer = select(Case.id).where(Case.customer_id.in_(held_customer_ids()))
    return direct.union(via_customer)
