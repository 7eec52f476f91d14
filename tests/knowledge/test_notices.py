"""Service notices: posted once by a supervisor, shown on every channel while live, gone when they end."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.knowledge.notices import notice_demand, post_notice
from crm.models import Category, Contact, FormDefinition, Message, OutboundEmail, Queue, ServiceNotice, utcnow
from tests import factories
from tests.channels.mailbuilder import raw_email

BIN_NOTICE = "Bin collections in Carlisle are a day late this week"


@pytest.fixture
def bin_form(services):
    form = FormDefinition(slug="report-a-missed-bin", title="Report a missed bin", service_id=services["waste"].id,
                          category_code="missed_bin", published=True,
                          fields=[{"name": "details", "label": "What happened?", "type": "textarea", "required": True}])
    db.session.add(form)
    db.session.commit()
    return form


def _post(supervisor, **overrides):
    values = {"service_code": "waste", "message": BIN_NOTICE, "ends_at": utcnow() + timedelta(days=3), "areas": "CA1"}
    values.update(overrides)
    notice = post_notice(supervisor, **values)
    db.session.commit()
    return notice


def test_a_supervisor_posts_a_notice_through_the_api_and_others_may_not(client, services, supervisor, make_user,
                                                                       api_token):
    body = {"service": "waste", "message": BIN_NOTICE, "areas": ["ca1", "CA2"],
            "ends_at": (utcnow() + timedelta(days=2)).isoformat()}
    made = client.post("/api/v1/notices", json=body, headers=api_token(supervisor))
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["areas"] == ["CA1", "CA2"]
    for role in ("agent", "service_officer", "editor", "records"):
        user = make_user(role, email=f"{role}@test.example")
        assert client.post("/api/v1/notices", json=body, headers=api_token(user)).status_code == 403, role
    live = client.get("/api/v1/notices?service=waste&postcode=CA1%201RD", headers=api_token(supervisor)).get_json()
    assert [n["message"] for n in live["items"]] == [BIN_NOTICE]
    elsewhere = client.get("/api/v1/notices?service=waste&postcode=LA9%204DL", headers=api_token(supervisor))
    assert elsewhere.get_json()["items"] == []


@pytest.mark.parametrize("body, field", [
    ({"service": "nope", "message": "x"}, "service"),
    ({"service": "waste", "message": ""}, "message"),
    ({"service": "waste", "message": "x", "areas": "Carlisle"}, "areas"),
    ({"service": "waste", "message": "x", "past": True}, "ends_at"),
])
def test_bad_notices_are_refused(client, services, supervisor, api_token, body, field):
    body = dict(body)
    ends = utcnow() - timedelta(hours=1) if body.pop("past", False) else utcnow() + timedelta(days=1)
    answer = client.post("/api/v1/notices", json={**body, "ends_at": ends.isoformat()}, headers=api_token(supervisor))
    assert answer.status_code in (404, 422)
    assert field in answer.get_json()["error"]["fields"]


def test_a_live_notice_shows_on_every_resident_surface(client, services, supervisor, bin_form):
    _post(supervisor, areas="")
    customer = factories.customer(email="resident@example.org")
    case = factories.case(customer, service_code="waste", category="missed_bin", title="Bin missed")
    db.session.commit()
    for path in ("/forms/report-a-missed-bin", "/chat", "/track", "/help/"):
        assert BIN_NOTICE in client.get(path).get_data(as_text=True), path


def test_a_notice_shows_in_the_agent_console(client, auth, services, supervisor, make_user):
    _post(supervisor)
    customer = factories.customer(name="Carla Carlisle", address={"line1": "1 Castle St", "postcode": "CA1 1RD"})
    far = factories.customer(name="Kendal Kim", address={"line1": "2 Stricklandgate", "postcode": "LA9 4DL"})
    db.session.commit()
    auth.login(make_user("agent"))
    assert BIN_NOTICE in client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert BIN_NOTICE not in client.get(f"/customers/{far.id}").get_data(as_text=True)   # CA1 only
    assert BIN_NOTICE in client.get("/agent/chats").get_data(as_text=True)
    guidance = client.get("/knowledge/guidance?category=missed_bin&service=waste").get_json()
    assert [n["message"] for n in guidance["notices"]] == [BIN_NOTICE]


def test_notices_expire_by_themselves_and_can_be_withdrawn(client, services, supervisor, bin_form):
    notice = _post(supervisor, areas="")
    assert BIN_NOTICE in client.get("/forms/report-a-missed-bin").get_data(as_text=True)
    notice.ends_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert BIN_NOTICE not in client.get("/forms/report-a-missed-bin").get_data(as_text=True)
    later = _post(supervisor, areas="", starts_at=utcnow() + timedelta(days=1), ends_at=utcnow() + timedelta(days=2))
    assert BIN_NOTICE not in client.get("/chat").get_data(as_text=True)   # not started yet
    later.starts_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert BIN_NOTICE in client.get("/chat").get_data(as_text=True)
    from crm.knowledge.notices import withdraw_notice

    withdraw_notice(supervisor, later.id)
    db.session.commit()
    assert BIN_NOTICE not in client.get("/chat").get_data(as_text=True)


def test_an_email_enquiry_about_the_service_is_told_in_its_acknowledgement(app, services, supervisor, smtp_sink):
    from crm.channels.email import receive

    services["waste"].email_address = "waste@council.example"
    db.session.add(Queue(code="waste_email", name="Waste email", channel="email", service_id=services["waste"].id))
    db.session.commit()
    _post(supervisor, areas="")
    result = receive(raw_email(to="waste@council.example", subject="Bin not emptied", sender="Sam <sam@example.org>"),
                     source="http")
    ack = db.session.scalar(select(Message).join(OutboundEmail, OutboundEmail.stored_message_id == Message.id)
                            .where(OutboundEmail.conversation_id == result.conversation_id, OutboundEmail.kind == "ack"))
    assert ack is not None and BIN_NOTICE in ack.body
    other = receive(raw_email(to="contact@council.example", subject="Library card", sender="Lee <lee@example.org>"),
                    source="http")
    other_ack = db.session.scalar(select(Message).join(OutboundEmail, OutboundEmail.stored_message_id == Message.id)
                                  .where(OutboundEmail.conversation_id == other.conversation_id))
    assert other_ack is None or BIN_NOTICE not in other_ack.body


def test_contacts_about_a_service_while_its_notice_was_live_are_counted(services, supervisor):
    notice = _post(supervisor, areas="")
    customer = factories.customer()
    db.session.flush()
    now = utcnow()
    db.session.add_all([
        Contact(customer_id=customer.id, channel="phone", category="missed_bin", occurred_at=now),
        Contact(customer_id=customer.id, channel="email", category="garden_waste", occurred_at=now),
        Contact(customer_id=customer.id, channel="phone", category="pothole", occurred_at=now),
        Contact(customer_id=customer.id, channel="phone", category="missed_bin", occurred_at=now - timedelta(days=9)),
    ])
    db.session.commit()
    rows = notice_demand(now - timedelta(days=30), now + timedelta(minutes=1))
    assert [(r["notice"].id, r["contacts"]) for r in rows] == [(notice.id, 2)]


def test_the_reports_page_shows_the_demand_a_notice_explains(client, auth, services, supervisor):
    _post(supervisor, areas="")
    customer = factories.customer()
    db.session.flush()
    db.session.add(Contact(customer_id=customer.id, channel="phone", category="missed_bin", occurred_at=utcnow()))
    db.session.commit()
    auth.login(supervisor)
    page = client.get("/supervisor/reports").get_data(as_text=True)
    assert "Service notices" in page and BIN_NOTICE in page
    today = utcnow().date().isoformat()
    csv = client.get(f"/supervisor/reports/notice-demand.csv?from={today}&to={today}")
    assert csv.status_code == 200 and BIN_NOTICE in csv.get_data(as_text=True)
