"""Merge two customer records that are the same person, losing nothing."""
from sqlalchemy import update, select

from ..audit import audit
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..models import (
    Address, Case, CaseEvent, Contact, Conversation, Customer, CustomerIdentity, CustomerNameTerm,
)
from ..signals import customers_merged, send_after_commit
from .identity import set_name


def merge_customers(source: Customer, target: Customer, actor, keep_name: str = "target") -> Customer:
    """Move everything of `source` onto `target`, mark source merged, and audit it."""
    if source.id == target.id:
        raise ValidationFailed("A customer cannot be merged into itself", {"source_id": ["same as target"]})
    if source.merged_into_id or target.merged_into_id:
        raise Conflict("One of these customers has already been merged")
    moved = {}
    for model in (CustomerIdentity, Address, Contact, Conversation, Case, CaseEvent):
        result = db.session.execute(
            update(model).where(model.customer_id == source.id).values(customer_id=target.id)
            .execution_options(synchronize_session=False)
        )
        moved[model.__tablename__] = result.rowcount
    if not target.vulnerability_notes and source.vulnerability_notes:
        target.vulnerability_notes = source.vulnerability_notes
    elif source.vulnerability_notes and source.vulnerability_notes != target.vulnerability_notes:
        target.vulnerability_notes = f"{target.vulnerability_notes}\n{source.vulnerability_notes}"
    previous_names = (source.name, target.name)
    if keep_name == "source":
        set_name(target, source.name)
    source.merged_into_id = target.id
    db.session.flush()
    # The bulk updates bypassed the identity map: reload what we hold.
    db.session.expire_all()
    audit(actor, "customer.merge", "customer", target.id, source_id=source.id,
          names=list(previous_names), moved=moved)
    send_after_commit(customers_merged, source_id=source.id, target_id=target.id)
    return db.session.get(Customer, target.id)
