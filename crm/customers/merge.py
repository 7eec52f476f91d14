"""Merge two customer records that are the same person, losing nothing, and undo a merge for a while."""
from datetime import timedelta
from typing import Optional

from flask import current_app
from sqlalchemy import select, update

from ..audit import audit
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..models import (
    Address, Case, CaseEvent, Contact, Conversation, Customer, CustomerIdentity, CustomerMerge, InboundEmail,
    PossibleDuplicate, utcnow,
)
from ..signals import customers_merged, send_after_commit
from .identity import set_name

# What a merge moves from one record to the other; each moved row's id is kept so unmerge is exact.
MOVED_MODELS = (CustomerIdentity, Address, Contact, Conversation, Case, CaseEvent, InboundEmail)
DEFAULT_UNMERGE_DAYS = 30


def unmerge_window() -> timedelta:
    """Return how long after a merge it may be undone (CUSTOMER_UNMERGE_DAYS, 30 by default)."""
    return timedelta(days=int(current_app.config.get("CUSTOMER_UNMERGE_DAYS", DEFAULT_UNMERGE_DAYS)))


def _main_flags(*customers) -> dict:
    """Return which identities and addresses of the customers are marked main, by id."""
    return {
        "identities": {str(i.id): bool(i.main) for c in customers for i in c.identities},
        "addresses": {str(a.id): bool(a.main) for c in customers for a in c.addresses},
    }


def merge_customers(source: Customer, target: Customer, actor, keep_name: str = "target",
                    main: Optional[dict] = None, duplicate: Optional[PossibleDuplicate] = None) -> Customer:
    """Move everything of `source` onto `target`, mark source merged, record what moved, and audit it.

    `main` may name the identity or address ids to mark main afterwards ({"email": id, "phone": id,
    "address": id}); otherwise the target's main details stay main.
    """
    if source.id == target.id:
        raise ValidationFailed("A customer cannot be merged into itself", {"source_id": ["same as target"]})
    if source.merged_into_id or target.merged_into_id:
        raise Conflict("One of these customers has already been merged")
    before = {"target_name": target.name, "source_name": source.name,
              "target_vulnerability_notes": target.vulnerability_notes,
              "target_preferred_channel": target.preferred_channel,
              "target_restricted": bool(getattr(target, "restricted", False)),
              **_main_flags(source, target)}
    chosen = _check_main_choice(main or {}, source, target)
    moved_ids, moved = {}, {}
    for model in MOVED_MODELS:
        ids = db.session.scalars(select(model.id).where(model.customer_id == source.id)).all()
        if ids:
            db.session.execute(update(model).where(model.id.in_(ids)).values(customer_id=target.id)
                               .execution_options(synchronize_session=False))
        moved_ids[model.__tablename__] = list(ids)
        moved[model.__tablename__] = len(ids)
    if not target.vulnerability_notes and source.vulnerability_notes:
        target.vulnerability_notes = source.vulnerability_notes
    elif source.vulnerability_notes and source.vulnerability_notes != target.vulnerability_notes:
        target.vulnerability_notes = f"{target.vulnerability_notes}\n{source.vulnerability_notes}"
    if getattr(source, "restricted", False):
        target.restricted = True  # a restricted person's records stay restricted wherever they go
    if not target.preferred_channel and source.preferred_channel:
        target.preferred_channel = source.preferred_channel
    if keep_name == "source":
        set_name(target, source.name)
    source.merged_into_id = target.id
    record = CustomerMerge(source_id=source.id, target_id=target.id, actor_id=getattr(actor, "id", None),
                           moved=moved_ids, before=before)
    db.session.add(record)
    db.session.flush()
    # The bulk updates bypassed the identity map: reload what we hold.
    db.session.expire_all()
    target = db.session.get(Customer, target.id)
    _apply_main(target, chosen)
    for row in db.session.scalars(select(PossibleDuplicate).where(
            PossibleDuplicate.status == "open",
            PossibleDuplicate.customer_id.in_((source.id, target.id)),
            PossibleDuplicate.other_id.in_((source.id, target.id)))):
        row.status, row.decided_at, row.merge_id = "merged", utcnow(), record.id
        row.decided_by_id = getattr(actor, "id", None)
    audit(actor, "customer.merge", "customer", target.id, source_id=source.id, merge_id=record.id,
          names=[before["source_name"], before["target_name"]], moved=moved,
          duplicate_id=duplicate.id if duplicate is not None else None)
    send_after_commit(customers_merged, source_id=source.id, target_id=target.id)
    db.session.flush()
    return target


def _check_main_choice(main: dict, source: Customer, target: Customer) -> dict:
    """Check that the chosen main details belong to one of the two records; return them by kind."""
    identities = {i.id: i for c in (source, target) for i in c.identities}
    addresses = {a.id for c in (source, target) for a in c.addresses}
    chosen = {}
    for kind in ("email", "phone"):
        if main.get(kind) is not None:
            identity = identities.get(main[kind])
            if identity is None or identity.kind != kind:
                raise ValidationFailed(f"Choose the main {kind} from the two records", {kind: ["not on either record"]})
            chosen[kind] = identity.id
    if main.get("address") is not None:
        if main["address"] not in addresses:
            raise ValidationFailed("Choose the main address from the two records", {"address": ["not on either record"]})
        chosen["address"] = main["address"]
    return chosen


def _apply_main(target: Customer, chosen: dict) -> None:
    """Leave exactly one main identity per kind and one main address on the merged record."""
    for kind in ("email", "phone"):
        rows = [i for i in target.identities if i.kind == kind]
        if not rows:
            continue
        pick = chosen.get(kind) or next((i.id for i in rows if i.main), rows[0].id)
        for identity in rows:
            identity.main = identity.id == pick
    if target.addresses:
        pick = chosen.get("address") or next((a.id for a in target.addresses if a.main), target.addresses[0].id)
        for address in target.addresses:
            address.main = address.id == pick


def latest_merge_into(customer: Customer) -> Optional[CustomerMerge]:
    """Return the merge that folded `customer` into another record, if it has not been undone."""
    return db.session.scalar(select(CustomerMerge).where(
        CustomerMerge.source_id == customer.id, CustomerMerge.undone_at.is_(None))
        .order_by(CustomerMerge.id.desc()).limit(1))


def merges_into(customer: Customer) -> list[CustomerMerge]:
    """Return the merges into `customer` that can still be undone, newest first."""
    since = utcnow() - unmerge_window()
    return db.session.scalars(select(CustomerMerge).where(
        CustomerMerge.target_id == customer.id, CustomerMerge.undone_at.is_(None),
        CustomerMerge.created_at >= since).order_by(CustomerMerge.id.desc())).all()


def unmerge(record: CustomerMerge, actor, reason: str = "") -> Customer:
    """Undo a merge: everything it moved goes back to the merged-away record, which lives again.

    Rows that arrived on the kept record after the merge stay there. Returns the restored record.
    """
    if record.undone_at is not None:
        raise Conflict("This merge has already been undone")
    if record.created_at < utcnow() - unmerge_window():
        raise Conflict(f"A merge can be undone for {unmerge_window().days} days only; this one is older",
                       code="unmerge_expired")
    source = db.session.get(Customer, record.source_id)
    target = db.session.get(Customer, record.target_id)
    if target.merged_into_id:
        raise Conflict(f"Customer {target.id} has since been merged into {target.merged_into_id}: undo that first")
    later = db.session.scalar(select(CustomerMerge.id).where(
        CustomerMerge.target_id == target.id, CustomerMerge.id > record.id, CustomerMerge.undone_at.is_(None)))
    moved = record.moved or {}
    returned = {}
    for model in MOVED_MODELS:
        ids = moved.get(model.__tablename__) or []
        count = 0
        for start in range(0, len(ids), 500):
            result = db.session.execute(
                update(model).where(model.id.in_(ids[start:start + 500]), model.customer_id == target.id)
                .values(customer_id=source.id).execution_options(synchronize_session=False))
            count += result.rowcount
        returned[model.__tablename__] = count
    case_ids = moved.get(Case.__tablename__) or []
    for start in range(0, len(case_ids), 500):
        # Events added to a returned case after the merge follow their case.
        db.session.execute(update(CaseEvent).where(CaseEvent.case_id.in_(case_ids[start:start + 500]),
                                                   CaseEvent.customer_id == target.id)
                           .values(customer_id=source.id).execution_options(synchronize_session=False))
    before = record.before or {}
    source.merged_into_id = None
    if later is None:  # a later merge into the same record changed these again: leave them
        set_name(target, before.get("target_name") or target.name)
        target.vulnerability_notes = before.get("target_vulnerability_notes")
        target.preferred_channel = before.get("target_preferred_channel")
        if hasattr(target, "restricted"):
            target.restricted = bool(before.get("target_restricted"))
    record.undone_at = utcnow()
    record.undone_by_id = getattr(actor, "id", None)
    record.undo_reason = (reason or "").strip()[:2000] or None
    db.session.flush()
    db.session.expire_all()
    for model, key in ((CustomerIdentity, "identities"), (Address, "addresses")):
        flags = before.get(key) or {}
        for row in db.session.scalars(select(model).where(model.id.in_([int(i) for i in flags]))):
            row.main = flags[str(row.id)]
    for row in db.session.scalars(select(PossibleDuplicate).where(PossibleDuplicate.merge_id == record.id)):
        row.status, row.merge_id, row.decided_at, row.decided_by_id = "open", None, None, None
    audit(actor, "customer.unmerge", "customer", record.source_id, merge_id=record.id, into_id=record.target_id,
          returned=returned, reason=record.undo_reason)
    db.session.flush()
    return db.session.get(Customer, record.source_id)
