"""Staff keep a customer's contact details from the customer page; search shows open cases and last contact."""
from datetime import datetime, timezone

from sqlalchemy import select

from crm.customers.identity import display_phone
from crm.customers.timeline import record_contact
from crm.extensions import db
from crm.models import AuditLog, Customer
from tests import factories
from tests.conftest import csrf_from


def test_phones_are_shown_the_british_way_and_stored_in_e164(app):
    assert display_phone("+447700900002") == "07700 900002"
    assert display_phone("+441228606060") == "01228 606060"
    assert display_phone("+33123456789") == "+33 1 23 45 67 89"
    assert display_phone(None) == ""
    made = factories.customer("Phone Person", phone="07700 900002")
    assert made.identity_values("phone") == ["+447700900002"]


def _page(client, customer):
    page = client.get(f"/customers/{customer.id}/details")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_an_agent_adds_details_marks_the_main_ones_and_confirms_one_on_a_call(app, client, auth, make_user):
    agent = make_user("agent")
    auth.login(agent)
    jane = factories.customer("Jane Resident", email="jane@example.org", phone="07700 900002",
                              address={"line1": "1 Fell View", "postcode": "CA12 4NR"})
    html = _page(client, jane)
    assert "07700 900002" in html and "claimed" in html
    token = csrf_from(html)
    added = client.post(f"/customers/{jane.id}/details/identities",
                        data={"csrf_token": token, "kind": "email", "value": "Jane.Work@Example.org", "main": "y"})
    assert added.status_code == 303
    client.post(f"/customers/{jane.id}/details/addresses",
                data={"csrf_token": token, "line1": "9 New Road", "town": "Keswick", "postcode": "ca124aa", "main": "y"})
    phone = next(i for i in jane.identities if i.kind == "phone")
    client.post(f"/customers/{jane.id}/details/identities/{phone.id}/confirm", data={"csrf_token": token})
    client.post(f"/customers/{jane.id}/details/name", data={"csrf_token": token, "name": "Jane Armstrong"})
    db.session.expire_all()
    jane = db.session.get(Customer, jane.id)
    assert jane.name == "Jane Armstrong"
    assert jane.primary_email == "jane.work@example.org"
    assert jane.primary_address.one_line() == "9 New Road, Keswick, CA12 4AA"
    assert next(i for i in jane.identities if i.kind == "phone").verified
    actions = set(db.session.scalars(select(AuditLog.action).where(AuditLog.actor_id == agent.id)))
    assert {"customer.add_identity", "customer.add_address", "customer.confirm_identity",
            "customer.rename"} <= actions
    page = client.get(f"/customers/{jane.id}").get_data(as_text=True)
    assert "Edit contact details" in page and "Not verified" not in page  # a confirmed phone


def test_bad_detail_edits_are_refused_with_a_message_not_a_500(app, client, auth, make_user):
    auth.login(make_user("agent"))
    jane = factories.customer("Jane Resident", email="jane@example.org")
    other = factories.customer("Other Person", email="other@example.org")
    token = csrf_from(_page(client, jane))
    for data in ({"kind": "email", "value": "not an email"}, {"kind": "fax", "value": "123"},
                 {"kind": "email", "value": "other@example.org"}):
        response = client.post(f"/customers/{jane.id}/details/identities", data={"csrf_token": token, **data})
        assert response.status_code == 303
    assert client.post(f"/customers/{jane.id}/details/identities/{other.identities[0].id}/main",
                       data={"csrf_token": token}).status_code == 303
    assert client.post(f"/customers/{jane.id}/details/identities/1/explode",
                       data={"csrf_token": token}).status_code == 404
    assert client.post(f"/customers/{jane.id}/details/name", data={"csrf_token": token, "name": ""}).status_code == 303
    db.session.expire_all()
    assert [i.value for i in db.session.get(Customer, jane.id).identities] == ["jane@example.org"]
    assert db.session.get(Customer, other.id).identities[0].main


def test_officers_cannot_edit_contact_details(app, client, auth, make_user):
    auth.login(make_user("service_officer"))
    jane = factories.customer("Jane Resident", email="jane@example.org")
    assert client.get(f"/customers/{jane.id}/details").status_code == 403


def test_search_shows_open_cases_and_last_contact_in_the_console_and_api(app, client, auth, make_user, api_token):
    factories.service()
    jane = factories.customer("Jane Resident", email="jane@example.org", phone="07700 900002")
    factories.case(jane)
    record_contact(jane, "phone", summary="call", outcome="resolved_first_time",
                   occurred_at=datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc))
    db.session.commit()
    agent = make_user("agent")
    [item] = client.get("/api/v1/customers?q=jane", headers=api_token(agent)).json["items"]
    assert item["open_cases"] == 1 and item["last_contact_at"].startswith("2026-03-04T09:00")
    auth.login(agent)
    html = client.get("/console?q=07700900002").get_data(as_text=True)
    assert "07700 900002" in html and "04 Mar 2026" in html and "Open cases" in html


def test_the_customer_page_shows_the_residents_channel_and_update_preference(app, client, auth, make_user):
    from crm.portal.accounts import sign_up, tie_to_customer, update_preferences

    jane = factories.customer("Jane Resident", email="jane@example.org")
    account, _ = sign_up("Jane Resident", "jane@example.org", None)
    tie_to_customer(account)
    update_preferences(account, False, "phone")
    db.session.commit()
    auth.login(make_user("agent"))
    html = client.get(f"/customers/{jane.id}").get_data(as_text=True)
    assert "Phone" in html and "not by email (online only)" in html
    assert "Not verified" not in html  # the email was proved by the sign-in link
