"""POST /contacts logs a touch, resolving the caller and optionally raising a case."""
from sqlalchemy import select

from crm.extensions import db
from crm.models import Case, Contact
from tests import factories


def test_log_a_call_for_a_new_caller_resolves_them_by_phone(client, agent_headers, app):
    response = client.post("/api/v1/contacts", headers=agent_headers, json={
        "channel": "phone", "direction": "inbound", "caller": {"name": "Sam Fell", "phone": "07700 900777"},
        "category": "missed_bin", "notes": "Bin missed on Tuesday", "outcome": "resolved_first_time",
        "started_at": "2026-03-01T09:00:00+00:00", "ended_at": "2026-03-01T09:04:30+00:00"})
    assert response.status_code == 201, response.json
    body = response.json
    assert body["handle_seconds"] == 270 and body["case_reference"] is None
    again = client.post("/api/v1/contacts", headers=agent_headers, json={
        "channel": "phone", "caller": {"name": "Sam", "phone": "+447700900777"}, "category": "missed_bin",
        "notes": "", "outcome": "signposted"})
    assert again.json["customer_id"] == body["customer_id"]


def test_log_a_call_raising_a_case(client, agent_headers, app):
    factories.service()
    jane = factories.customer("Jane Resident", email="jane@example.org")
    response = client.post("/api/v1/contacts", headers=agent_headers, json={
        "channel": "phone", "customer_id": jane.id, "category": "pothole", "notes": "Deep pothole",
        "outcome": "case_raised", "case": {"service": "highways", "category": "pothole",
                                           "title": "Pothole outside 4 Main St", "description": "Deep"}})
    assert response.status_code == 201, response.json
    reference = response.json["case_reference"]
    assert reference.startswith("CAS-")
    case = db.session.scalar(select(Case).where(Case.reference == reference))
    contact = db.session.get(Contact, response.json["id"])
    assert case.customer_id == jane.id and contact.case_id == case.id and contact.outcome == "case_raised"
    timeline = client.get(f"/api/v1/customers/{jane.id}/timeline", headers=agent_headers).json["items"]
    assert any(e["kind"] == "case_event" and e["case_reference"] == reference for e in timeline)
    assert any(e["kind"] == "contact" and e["case_reference"] == reference for e in timeline)


def test_case_raised_without_a_case_is_refused(client, agent_headers, app):
    jane = factories.customer("Jane Resident")
    response = client.post("/api/v1/contacts", headers=agent_headers, json={
        "channel": "phone", "customer_id": jane.id, "outcome": "case_raised"})
    assert response.status_code == 422 and "case" in response.json["error"]["fields"]


def test_a_contact_without_an_outcome_is_refused_rather_than_counted_as_resolved(client, agent_headers, app):
    jane = factories.customer("Jane Resident")
    response = client.post("/api/v1/contacts", headers=agent_headers, json={
        "channel": "phone", "customer_id": jane.id, "notes": "Asked about bins"})
    assert response.status_code == 422 and "outcome" in response.json["error"]["fields"]
    assert db.session.query(Contact).count() == 0
