"""The agent console: find the caller, start a new one, log a call, merge duplicates."""
from sqlalchemy import select

from crm.extensions import db
from crm.models import Case, Contact, Customer
from tests import factories
from tests.conftest import csrf_from


def test_search_page_finds_a_caller_by_phone(agent_client, app):
    jane = factories.customer("Jane Armstrong", phone="07700 900123")
    page = agent_client.get("/console?q=07700+900123").get_data(as_text=True)
    assert f"/customers/{jane.id}" in page and "Jane Armstrong" in page


def test_new_caller_form_creates_a_customer_and_keeps_input_on_error(agent_client, app):
    form = agent_client.get("/customers/new?q=07700900555").get_data(as_text=True)
    assert 'value="07700900555"' in form
    bad = agent_client.post("/customers/new", data={"csrf_token": csrf_from(form), "name": "Sam Fell",
                                                    "email": "not-an-email", "phone": "07700900555"})
    assert bad.status_code == 422 and 'value="Sam Fell"' in bad.get_data(as_text=True)
    good = agent_client.post("/customers/new", data={"csrf_token": csrf_from(form), "name": "Sam Fell",
                                                     "phone": "07700900555", "postcode": "ca11aa"})
    assert good.status_code == 302
    made = db.session.scalar(select(Customer).where(Customer.name == "Sam Fell"))
    assert made.primary_phone == "+447700900555" and made.addresses[0].postcode == "CA1 1AA"


def test_log_a_call_with_a_case_from_the_customer_page(agent_client, app):
    factories.service()
    jane = factories.customer("Jane Armstrong")
    page = agent_client.get(f"/customers/{jane.id}").get_data(as_text=True)
    assert "Log a call" in page and 'id="call-timer"' in page
    response = agent_client.post(f"/customers/{jane.id}/calls", data={
        "csrf_token": csrf_from(page), "started_at": "2026-03-01T09:00:00+00:00",
        "ended_at": "2026-03-01T09:03:00+00:00", "direction": "inbound", "category": "pothole",
        "notes": "Pothole by the school", "outcome": "resolved_first_time", "raise_case": "y",
        "case_title": "Pothole by the school", "case_priority": "high"}, follow_redirects=True)
    assert response.status_code == 200
    contact = db.session.scalar(select(Contact).where(Contact.customer_id == jane.id))
    case = db.session.scalar(select(Case).where(Case.customer_id == jane.id))
    assert contact.outcome == "case_raised" and contact.handle_seconds == 180 and contact.case_id == case.id
    assert case.priority == "high" and case.reference in response.get_data(as_text=True)


def test_a_call_with_an_unknown_category_is_refused_with_the_form_kept(agent_client, app):
    jane = factories.customer("Jane Armstrong")
    page = agent_client.get(f"/customers/{jane.id}").get_data(as_text=True)
    response = agent_client.post(f"/customers/{jane.id}/calls", data={
        "csrf_token": csrf_from(page), "category": "not-a-category", "notes": "kept text",
        "outcome": "signposted"})
    assert response.status_code == 400 and "kept text" in response.get_data(as_text=True)
    assert db.session.query(Contact).count() == 0


def test_merge_from_the_customer_page(agent_client, app):
    keep = factories.customer("Jane Armstrong", email="jane@example.org")
    dupe = factories.customer("J Armstrong", phone="07700 900123")
    page = agent_client.get(f"/customers/{keep.id}").get_data(as_text=True)
    response = agent_client.post(f"/customers/{keep.id}/merge", data={
        "csrf_token": csrf_from(page), "source_id": dupe.id, "keep_name": "target"}, follow_redirects=True)
    assert "merged into this record" in response.get_data(as_text=True)
    assert db.session.get(Customer, dupe.id).merged_into_id == keep.id
    # The old record's page now leads to the surviving one.
    assert agent_client.get(f"/customers/{dupe.id}").headers["Location"].endswith(f"/customers/{keep.id}")


def test_vulnerability_notes_are_shown_to_supervisors_and_audited(client, auth, make_user, app):
    from crm.models import AuditLog

    jane = factories.customer("Jane Armstrong")
    jane.vulnerability_notes = "Hearing impaired; prefers text"
    db.session.commit()
    auth.login(make_user("agent"))
    assert "prefers text" not in client.get(f"/customers/{jane.id}").get_data(as_text=True)
    auth.logout()
    auth.login(make_user("supervisor"))
    assert "prefers text" in client.get(f"/customers/{jane.id}").get_data(as_text=True)
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "customer.view_sensitive"))
