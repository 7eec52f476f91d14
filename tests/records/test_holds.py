"""Legal holds: a hold on a customer or one of their cases blocks erasure until it is released."""
import json

from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditLog, Case, Customer
from tests import factories

from .history import NAME, PERSONAL, build_history, scan_database


def test_a_case_hold_blocks_erasure_by_api_and_command_until_released(
        app, client, agent, agent_headers, officer_headers, runner):
    customer_id, _ = build_history(client, agent, agent_headers)
    reference = db.session.scalar(select(Case.reference).where(Case.customer_id == customer_id).order_by(Case.id))
    placed = client.post(f"/api/v1/customers/{customer_id}/legal-holds", headers=officer_headers,
                         json={"reason": "Personal injury claim", "reference": "CLAIM-42", "case_reference": reference})
    assert placed.status_code == 201, placed.get_data(as_text=True)
    hold = placed.get_json()
    assert hold["case_id"] and hold["customer_id"] is None

    for dry_run in (True, False):
        refused = client.post(f"/api/v1/customers/{customer_id}/erase", headers=officer_headers,
                              json={"reason": "request", "dry_run": dry_run})
        assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "legal_hold"
    result = runner.invoke(args=["crm", "erase-customer", str(customer_id), "--reason", "request"])
    assert result.exit_code != 0 and "legal hold" in result.output
    assert scan_database(PERSONAL)  # nothing was erased

    released = client.post(f"/api/v1/records/legal-holds/{hold['id']}/release", headers=officer_headers,
                           json={"reason": "claim settled"})
    assert released.status_code == 200 and released.get_json()["released_at"]
    again = client.post(f"/api/v1/records/legal-holds/{hold['id']}/release", headers=officer_headers, json={})
    assert again.status_code == 409
    done = client.post(f"/api/v1/customers/{customer_id}/erase", headers=officer_headers, json={"reason": "request"})
    assert done.status_code == 200
    actions = db.session.scalars(select(AuditLog.action).where(AuditLog.action.startswith("records.hold"))).all()
    assert actions == ["records.hold.place", "records.hold.release"]


def test_a_customer_hold_from_the_page_blocks_erasure(app, client, auth, officer):
    from tests.conftest import csrf_from

    person = factories.customer(name="Held Person", email="held@example.org")
    auth.login(officer)
    page = client.get(f"/records/customers/{person.id}")
    token = csrf_from(page.get_data(as_text=True))
    client.post(f"/records/customers/{person.id}/holds", data={"csrf_token": token, "reason": "Tribunal"})
    answer = client.post(f"/records/customers/{person.id}/erase",
                         data={"csrf_token": token, "reason": "request", "action": "erase"}, follow_redirects=True)
    assert "legal hold" in answer.get_data(as_text=True)
    assert db.session.get(Customer, person.id).name == "Held Person"


def test_a_hold_needs_a_reason_and_a_case_of_that_customer(app, client, officer_headers):
    person = factories.customer()
    assert client.post(f"/api/v1/customers/{person.id}/legal-holds", headers=officer_headers,
                       json={"reason": ""}).status_code == 422
    assert client.post(f"/api/v1/customers/{person.id}/legal-holds", headers=officer_headers,
                       json={"reason": "x", "case_reference": "CAS-999999"}).status_code == 404
