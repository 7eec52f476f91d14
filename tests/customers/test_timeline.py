"""The unified timeline: contacts and case events, newest first, paged by an exact cursor."""
from datetime import datetime, timedelta, timezone

import pytest

from crm.cases.service import add_event
from crm.customers.timeline import record_contact, timeline_page
from crm.errors import ValidationFailed
from crm.extensions import db
from tests import factories

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def customer(app):
    factories.service()
    return factories.customer("Tim Line", email="tim@example.org")


def walk(customer_id, limit):
    """Follow the cursor to the end; return every entry as (kind, id) in order."""
    seen, cursor = [], None
    while True:
        page, cursor = timeline_page(customer_id, limit, cursor)
        seen.extend((kind, row.id) for kind, row in page)
        if cursor is None:
            return seen


def test_entries_come_newest_first_across_contacts_and_case_events(customer):
    old = record_contact(customer, "phone", summary="old call", occurred_at=T0)
    case = factories.case(customer)
    for event in case.events:
        event.occurred_at = T0 + timedelta(hours=1)
    new = record_contact(customer, "email", summary="new email", occurred_at=T0 + timedelta(hours=2))
    db.session.commit()
    page, cursor = timeline_page(customer.id, 10)
    kinds = [(kind, row.id) for kind, row in page]
    assert kinds[0] == ("contact", new.id) and kinds[-1] == ("contact", old.id)
    assert {k for k, _ in kinds[1:-1]} == {"case_event"}
    assert cursor is None


def test_paging_with_equal_timestamps_returns_each_entry_exactly_once(customer):
    # Twelve contacts and a case's events, all at the same instant: only the tie-break orders them.
    made = [record_contact(customer, "phone", summary=f"call {i}", occurred_at=T0).id for i in range(12)]
    case = factories.case(customer)
    for event in case.events:
        event.occurred_at = T0
    db.session.commit()
    everything = walk(customer.id, limit=5)
    assert len(everything) == len(set(everything)) == 12 + len(case.events)
    assert [i for k, i in everything if k == "contact"] == sorted(made, reverse=True)
    for limit in (1, 2, 3, 7, 100):
        assert walk(customer.id, limit) == everything


def test_a_bad_cursor_is_refused_clearly(customer):
    with pytest.raises(ValidationFailed):
        timeline_page(customer.id, 10, "not-a-cursor")


def test_record_contact_refuses_unknown_channels_and_outcomes(customer):
    with pytest.raises(ValidationFailed):
        record_contact(customer, "pigeon")
    with pytest.raises(ValidationFailed):
        record_contact(customer, "phone", outcome="maybe")
    with pytest.raises(ValidationFailed):
        record_contact(customer, "phone", started_at=T0, ended_at=T0 - timedelta(minutes=1))


def test_timeline_api_pages_with_next_cursor(customer, client, agent_headers):
    for i in range(5):
        record_contact(customer, "phone", summary=f"call {i}", occurred_at=T0 + timedelta(minutes=i))
    db.session.commit()
    first = client.get(f"/api/v1/customers/{customer.id}/timeline?limit=2", headers=agent_headers)
    assert first.status_code == 200
    body = first.json
    assert [e["summary"] for e in body["items"]] == ["call 4", "call 3"]
    assert body["items"][0]["occurred_at"].endswith("+00:00")
    assert body["items"][0]["kind"] == "contact" and body["items"][0]["channel"] == "phone"
    rest = client.get(f"/api/v1/customers/{customer.id}/timeline?limit=10&before={body['next']}",
                      headers=agent_headers).json
    assert [e["summary"] for e in rest["items"]] == ["call 2", "call 1", "call 0"]
    assert rest["next"] is None


def test_timeline_shows_case_events_with_their_reference(customer, client, agent_headers):
    case = factories.case(customer)
    add_event(case, "public_update", body="Repair booked for Tuesday", public=True)
    db.session.commit()
    items = client.get(f"/api/v1/customers/{customer.id}/timeline", headers=agent_headers).json["items"]
    assert items[0]["kind"] == "case_event" and items[0]["case_reference"] == case.reference
