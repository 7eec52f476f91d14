"""The possible-duplicates queue: pairs of customers that may be one person, for staff to merge or dismiss."""
from typing import Optional

from sqlalchemy import func, select

from ..audit import audit
from ..errors import Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..models import Case, Contact, PossibleDuplicate, utcnow
from .identity import live_customer
from .merge import merge_customers


def get_duplicate(duplicate_id: int) -> PossibleDuplicate:
    """Return one queued pair or raise NotFound."""
    row = db.session.get(PossibleDuplicate, duplicate_id)
    if row is None:
        raise NotFound(f"No possible duplicate {duplicate_id}")
    return row


def list_duplicates(status: str = "open", limit: int = 50, before: Optional[int] = None) -> list[PossibleDuplicate]:
    """Return queued pairs of one status, newest first (`before`: an id to page from)."""
    stmt = select(PossibleDuplicate).where(PossibleDuplicate.status == status)
    if before:
        stmt = stmt.where(PossibleDuplicate.id < before)
    return db.session.scalars(stmt.order_by(PossibleDuplicate.id.desc()).limit(max(1, min(limit, 200)))).all()


def open_duplicates_of(customer) -> list[PossibleDuplicate]:
    """Return the open pairs a customer is part of."""
    return db.session.scalars(select(PossibleDuplicate).where(
        PossibleDuplicate.status == "open",
        (PossibleDuplicate.customer_id == customer.id) | (PossibleDuplicate.other_id == customer.id))
        .order_by(PossibleDuplicate.id)).all()


def contacts_held(customer) -> int:
    """Return how many contacts a record holds (staff weigh its history before a merge)."""
    return db.session.scalar(select(func.count(Contact.id)).where(Contact.customer_id == customer.id))


def cases_held(customer) -> int:
    """Return how many cases a record holds."""
    return db.session.scalar(select(func.count(Case.id)).where(Case.customer_id == customer.id))


def merge_duplicate(row: PossibleDuplicate, actor, keep: str = "other", keep_name: str = "target",
                    main: Optional[dict] = None):
    """Merge a queued pair: `keep` says which record survives ("other", the older one, or "customer")."""
    if row.status != "open":
        raise Conflict(f"This pair has already been {row.status}")
    if keep not in ("other", "customer"):
        raise ValidationFailed("Say which record to keep", {"keep": ["other or customer"]})
    a, b = live_customer(row.customer), live_customer(row.other)
    if a.id == b.id:
        raise Conflict("These records are already one")
    source, target = (a, b) if keep == "other" else (b, a)
    return merge_customers(source, target, actor, keep_name=keep_name, main=main, duplicate=row)


def dismiss_duplicate(row: PossibleDuplicate, actor, note: str = "") -> PossibleDuplicate:
    """Record that the pair are different people; the pair is not queued again."""
    if row.status != "open":
        raise Conflict(f"This pair has already been {row.status}")
    row.status, row.decided_at, row.decided_by_id = "dismissed", utcnow(), getattr(actor, "id", None)
    audit(actor, "customer.duplicate_dismissed", "customer", row.customer_id, other_id=row.other_id,
          duplicate_id=row.id, note=(note or "").strip()[:500] or None)
    return row
