"""A merge records what it moved, so undoing it within the period puts both records back exactly."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from crm.customers.identity import resolve_customer
from crm.customers.merge import merge_customers, unmerge
from crm.customers.timeline import record_contact, timeline_page
from crm.errors import Conflict
from crm.extensions import db
from crm.models import (
    AuditLog, Case, Conversation, Customer, CustomerIdentity, CustomerMerge, PossibleDuplicate, utcnow,
)
from tests import factories


@pytest.fixture
def pair(app, make_user):
    factories.service()
    keep = factories.customer("Jane Armstrong", email="jane@example.org",
                              address={"line1": "1 Fell View", "postcode": "CA12 4NR"})
    dupe = factories.customer("Janet Armstrong", email="janet@example.org", phone="07700 900123",
                              address={"line1": "2 Lake Road", "postcode": "CA12 5AB"})
    for who in (keep, dupe):
        record_contact(who, "phone", summary=f"call from {who.name}", outcome="resolved_first_time",
                       occurred_at=datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
    db.session.add(Conversation(customer_id=dupe.id, channel="email", token="tok-dupe", subject="Bins"))
    db.session.commit()
    factories.case(dupe)
    return keep, dupe, make_user("supervisor")


def _holdings(customer_id):
    """Return what a record holds, by kind, as comparable sets."""
    customer = db.session.get(Customer, customer_id)
    return {
        "identities": {(i.kind, i.value, i.main) for i in customer.identities},
        "addresses": {(a.line1, a.main) for a in customer.addresses},
        "timeline": {(kind, row.id) for kind, row in timeline_page(customer_id, 100)[0]},
        "cases": set(db.session.scalars(select(Case.id).where(Case.customer_id == customer_id))),
        "conversations": set(db.session.scalars(select(Conversation.id).where(Conversation.customer_id == customer_id))),
        "name": customer.name,
    }


def test_unmerge_restores_both_records_exactly(pair):
    keep, dupe, supervisor = pair
    before = (_holdings(keep.id), _holdings(dupe.id))
    merged = merge_customers(dupe, keep, supervisor, keep_name="source",
                             main={"email": next(i.id for i in dupe.identities if i.kind == "email")})
    db.session.commit()
    assert merged.name == "Janet Armstrong"
    assert {(i.value, i.main) for i in merged.identities if i.kind == "email"} == {
        ("jane@example.org", False), ("janet@example.org", True)}
    record = db.session.scalar(select(CustomerMerge))
    restored = unmerge(record, supervisor, "wrong person")
    db.session.commit()
    assert restored.id == dupe.id and restored.merged_into_id is None
    assert (_holdings(keep.id), _holdings(dupe.id)) == before
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "customer.unmerge"))
    assert entry.actor_id == supervisor.id and entry.details["reason"] == "wrong person"


def test_what_arrived_after_the_merge_stays_on_the_kept_record(pair):
    keep, dupe, supervisor = pair
    merge_customers(dupe, keep, supervisor)
    db.session.commit()
    later = record_contact(db.session.get(Customer, keep.id), "phone", summary="after the merge",
                           outcome="resolved_first_time")
    db.session.commit()
    unmerge(db.session.scalar(select(CustomerMerge)), supervisor)
    db.session.commit()
    assert ("contact", later.id) in {(k, r.id) for k, r in timeline_page(keep.id, 100)[0]}


def test_a_merge_is_undone_once_and_only_within_the_period(pair, app):
    keep, dupe, supervisor = pair
    merge_customers(dupe, keep, supervisor)
    db.session.commit()
    record = db.session.scalar(select(CustomerMerge))
    record.created_at = utcnow() - timedelta(days=app.config["CUSTOMER_UNMERGE_DAYS"] + 1)
    db.session.commit()
    with pytest.raises(Conflict) as error:
        unmerge(record, supervisor)
    assert error.value.code == "unmerge_expired"
    record.created_at = utcnow()
    unmerge(record, supervisor)
    db.session.commit()
    with pytest.raises(Conflict):
        unmerge(record, supervisor)


def test_a_resident_account_follows_its_identity_back_on_unmerge(pair):
    from crm.portal.accounts import account_customer, sign_up, tie_to_customer

    keep, dupe, supervisor = pair
    account, _ = sign_up("Janet Armstrong", "janet@example.org", None)
    tie_to_customer(account)
    db.session.commit()
    merge_customers(dupe, keep, supervisor)
    db.session.commit()
    assert account_customer(account).id == keep.id
    unmerge(db.session.scalar(select(CustomerMerge)), supervisor)
    db.session.commit()
    assert account_customer(account).id == dupe.id


def test_undoing_a_merge_from_the_queue_reopens_the_pair(app, make_user):
    from crm.customers.duplicates import merge_duplicate

    supervisor = make_user("supervisor")
    factories.customer("Victoria Stone", phone="07700 900002")
    resolve_customer("Mallory Smith", "mallory@example.net", "07700 900002", source="chat")
    db.session.commit()
    row = db.session.scalar(select(PossibleDuplicate))
    merge_duplicate(row, supervisor)
    db.session.commit()
    assert row.status == "merged" and row.merge_id is not None
    unmerge(db.session.get(CustomerMerge, row.merge_id), supervisor)
    db.session.commit()
    assert row.status == "open" and row.merge_id is None
    mallory = db.session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == "mallory@example.net"))
    assert mallory.customer.name == "Mallory Smith" and mallory.customer.merged_into_id is None
