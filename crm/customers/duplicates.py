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


def side(customer) -> dict:
    """Return what staff compare of one record: details with their source, and how much history it holds."""
    return {
        "id": customer.id,
        "name": customer.name,
        "merged_into_id": customer.merged_into_id,
        "identities": [{"id": i.id, "kind": i.kind, "value": i.value, "verified": bool(i.verified),
                        "source": i.source, "main": bool(i.main)} for i in customer.identities],
        "addresses": [{"id": a.id, "text": a.one_line(), "main": bool(a.main)} for a in customer.addresses],
        "contacts": db.session.scalar(select(func.count(Contact.id)).where(Contact.customer_id == customer.id)),
        "cases": db.session.scalar(select(func.count(Case.id)).where(Case.customer_id == customer.id)),
        "created_at": customer.created_at,
    }


def preview(row: PossibleDuplicate) -> dict:
    """Return the pair side by side, with the reasons it was queued."""
    return {"id": row.id, "status": row.status, "reasons": row.reasons or [], "source": row.source,
            "created_at": row.created_at, "customer": side(row.customer), "other": side(row.other)}


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
