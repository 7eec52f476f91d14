"""The records that make up one person: their customer record and every record merged into it."""
from sqlalchemy import select

from ..errors import NotFound
from ..extensions import db
from ..merging import live_record
from ..models import Case, Conversation, Customer, CustomerIdentity, Message


def customer_family(customer_id: int) -> list[int]:
    """Return the customer's id and the ids of every record merged into it (at any depth), main first."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}")
    ids, frontier = [customer.id], [customer.id]
    while frontier:
        frontier = list(db.session.scalars(select(Customer.id).where(Customer.merged_into_id.in_(frontier))))
        ids.extend(i for i in frontier if i not in ids)
    return ids


def live_customer_for(customer_id: int) -> Customer:
    """Return the record a customer id now lives on (following merges)."""
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"No customer {customer_id}")
    return live_record(customer)


def case_ids(ids):
    """Return a select of the ids of the family's cases."""
    return select(Case.id).where(Case.customer_id.in_(ids))


def conversation_ids(ids):
    """Return a select of the ids of the family's conversations."""
    return select(Conversation.id).where(Conversation.customer_id.in_(ids))


def message_ids(ids):
    """Return a select of the ids of the messages in the family's conversations."""
    return select(Message.id).where(Message.conversation_id.in_(conversation_ids(ids)))


def identity_ids(ids):
    """Return a select of the ids of the family's identities."""
    return select(CustomerIdentity.id).where(CustomerIdentity.customer_id.in_(ids))
