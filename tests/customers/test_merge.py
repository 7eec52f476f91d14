"""Merging two records of the same person moves everything and loses nothing."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from crm.customers.merge import merge_customers
from crm.customers.timeline import record_contact, timeline_page
from crm.errors import DomainError
from crm.extensions import db
from crm.models import AuditLog, Conversation, Customer
from tests import factories


@pytest.fixture
def duplicates(app, make_user):
    factories.service()
    keep = factories.customer("Jane Armstrong", email="jane@example.org",
                              address={"line1": "1 Fell View", "postcode": "CA12 4NR"})
    dupe = factories.customer("J. Armstrong", phone="07700 900123")
    for who in (keep, dupe):
        record_contact(who, "phone", summary=f"call from {who.name}", outcome="resolved_first_time",
                       occurred_at=datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
    db.session.add(Conversation(customer_id=dupe.id, channel="email", token="tok-dupe", subject="Bins"))
    db.session.commit()
    factories.case(dupe)
    return keep, dupe, make_user("supervisor")


def test_merge_moves_identities_contacts_conversations_and_cases(duplicates):
    keep, dupe, supervisor = duplicates
    before = len(timeline_page(keep.id, 100)[0]) + len(timeline_page(dupe.id, 100)[0])
    merged = merge_customers(dupe, keep, supervisor)
    db.session.commit()
    assert sorted(i.value for i in merged.identities) == ["+447700900123", "jane@example.org"]
    assert len(timeline_page(keep.id, 100)[0]) == before
    assert timeline_page(dupe.id, 100)[0] == []
    assert db.session.scalar(select(Conversation).where(Conversation.token == "tok-dupe")).customer_id == keep.id
    assert db.session.get(Customer, dupe.id).merged_into_id == keep.id


def test_merge_leaves_an_audit_entry(duplicates):
    keep, dupe, supervisor = duplicates
    merge_customers(dupe, keep, supervisor)
    db.session.commit()
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "customer.merge"))
    assert entry.actor_id == supervisor.id and entry.details["source_id"] == dupe.id
    assert entry.details["moved"]["contacts"] == 1 and entry.details["moved"]["cases"] == 1


def test_a_customer_cannot_be_merged_twice_or_into_itself(duplicates):
    keep, dupe, supervisor = duplicates
    with pytest.raises(DomainError):
        merge_customers(keep, keep, supervisor)
    merge_customers(dupe, keep, supervisor)
    db.session.commit()
    with pytest.raises(DomainError):
        merge_customers(dupe, keep, supervisor)


def test_merge_through_the_api(duplicates, client, api_token):
    keep, dupe, supervisor = duplicates
    response = client.post(f"/api/v1/customers/{keep.id}/merge", json={"source_id": dupe.id},
                           headers=api_token(supervisor))
    assert response.status_code == 200, response.json
    assert {i["value"] for i in response.json["identities"]} == {"jane@example.org", "+447700900123"}
    again = client.post(f"/api/v1/customers/{keep.id}/merge", json={"source_id": dupe.id},
                        headers=api_token(supervisor))
    assert again.status_code == 409 and again.json["error"]["code"] == "conflict"
