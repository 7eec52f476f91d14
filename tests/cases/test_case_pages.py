"""Console pages: the officers' work list, working a case, raising one with deflection, routing-rule admin."""
import re

import pytest

from crm.models import AuditLog, Case, CaseEvent, Contact, Queue, RoutingRule
from tests import factories
from tests.conftest import csrf_from


@pytest.fixture
def highways(app):
    return factories.service("highways", "Highways", categories=(("pothole", "Pothole"),))


@pytest.fixture
def officer_client(client, auth, make_user, highways):
    officer = make_user("service_officer", service_id=highways.id, name="Olive Officer")
    assert auth.login(officer).status_code == 302
    client.user = officer
    return client


def page(client, url):
    response = client.get(url)
    return response, response.get_data(as_text=True)


def test_the_work_list_shows_the_officers_service_with_filters(officer_client, highways, db):
    customer = factories.customer()
    mine = factories.case(customer, title="Mine to do")
    factories.case(customer, title="Someone else's")
    closed = factories.case(customer, title="Old closed one")
    mine.assignee_id = officer_client.user.id
    closed.status = "closed"
    db.session.commit()
    response, html = page(officer_client, "/cases")
    assert response.status_code == 200
    assert "Mine to do" in html and "Someone else" in html and "Old closed one" not in html
    _, html = page(officer_client, "/cases?mine=1")
    assert "Mine to do" in html and "Someone else" not in html
    _, html = page(officer_client, "/cases?status=closed")
    assert "Old closed one" in html and "Mine to do" not in html
    _, html = page(officer_client, "/cases?at_risk=1")
    assert "No cases match" in html
    assert page(officer_client, "/cases?status=<script>&page=abc")[0].status_code == 200


def test_agents_do_not_get_the_work_list(agent_client, highways):
    assert agent_client.get("/cases").status_code == 403


def test_an_officer_works_a_case_from_its_page(officer_client, db):
    case = factories.case(factories.customer("Jane", email="jane@example.org"))
    response, html = page(officer_client, f"/cases/{case.reference}")
    assert response.status_code == 200 and case.reference in html
    token = csrf_from(html)
    url = f"/cases/{case.reference}"
    assert officer_client.post(f"{url}/status", data={"csrf_token": token, "status": "in_progress"}).status_code == 302
    assert officer_client.post(f"{url}/notes", data={"csrf_token": token, "body": "Called the contractor"}
                               ).status_code == 302
    # The first post only shows what the resident will read; nothing is published until confirmed.
    checked = officer_client.post(f"{url}/updates", data={"csrf_token": token, "body": "Fixing it Tuesday"})
    assert checked.status_code == 200 and "Publish this update to Jane?" in checked.get_data(as_text=True)
    assert not any(e.kind == "public_update" for e in db.session.get(Case, case.id).events)
    assert officer_client.post(f"{url}/updates", data={"csrf_token": token, "body": "Fixing it Tuesday",
                                                       "confirmed": "1"}).status_code == 302
    assert officer_client.post(f"{url}/assign", data={"csrf_token": token, "assignee_id": officer_client.user.id}
                               ).status_code == 302
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert case.status == "in_progress" and case.assignee_id == officer_client.user.id
    kinds = {(e.kind, e.public) for e in case.events}
    assert {("note", False), ("public_update", True), ("status_changed", False), ("assigned", False)} <= kinds
    _, html = page(officer_client, url)
    assert "Internal note" in html and "Public update" in html and "in_progress" not in html


def test_an_illegal_move_from_the_page_is_a_409_with_the_reason(officer_client, db):
    case = factories.case(factories.customer())
    _, html = page(officer_client, f"/cases/{case.reference}")
    response = officer_client.post(f"/cases/{case.reference}/status",
                                   data={"csrf_token": csrf_from(html), "status": "closed"})
    assert response.status_code == 409
    assert "cannot go from new to closed" in response.get_data(as_text=True)


def test_an_officer_of_another_service_may_read_but_not_work(client, auth, make_user, highways, db):
    waste = factories.service("waste", "Waste", categories=(("missed_bin", "Missed bin"),))
    case = factories.case(factories.customer())
    auth.login(make_user("service_officer", service_id=waste.id))
    response, html = page(client, f"/cases/{case.reference}")
    assert response.status_code == 200 and "Change status" not in html
    assert client.post(f"/cases/{case.reference}/status",
                       data={"csrf_token": csrf_from(html), "status": "open"}).status_code == 403


def test_raising_a_case_offers_the_open_case_nearby_and_attaches_instead(agent_client, highways, db):
    anna = factories.customer("Anna")
    existing = factories.case(anna, title="Pothole by the post office", latitude=54.8925, longitude=-2.9329)
    ben = factories.customer("Ben")
    _, html = page(agent_client, f"/customers/{ben.id}/cases/new")
    form = {"csrf_token": csrf_from(html), "category": "pothole", "title": "Hole by the post office",
            "latitude": "54.8926", "longitude": "-2.9330"}
    response = agent_client.post(f"/customers/{ben.id}/cases/new", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and existing.reference in html and "Is it one of these" in html
    attach = agent_client.post(f"/customers/{ben.id}/cases/attach", data={
        "csrf_token": csrf_from(html), "reference": existing.reference, "category": "pothole"})
    assert attach.status_code == 302
    assert db.session.query(Case).count() == 1
    contact = db.session.query(Contact).filter_by(customer_id=ben.id).one()
    assert contact.case_id == existing.id
    # Raising anyway makes a new, routed case.
    raised = agent_client.post(f"/customers/{ben.id}/cases/new", data=form | {"raise_anyway": "y"})
    assert raised.status_code == 302
    assert db.session.query(Case).count() == 2


def test_a_bad_new_case_form_is_a_400_keeping_what_was_typed(agent_client, highways):
    customer = factories.customer()
    _, html = page(agent_client, f"/customers/{customer.id}/cases/new")
    response = agent_client.post(f"/customers/{customer.id}/cases/new", data={
        "csrf_token": csrf_from(html), "category": "pothole", "title": "", "description": "kept text",
        "latitude": "north"})
    assert response.status_code == 400 and "kept text" in response.get_data(as_text=True)


def test_admins_manage_routing_rules(client, auth, make_user, highways, db):
    auth.login(make_user("admin"))
    response, html = page(client, "/admin/routing-rules")
    assert response.status_code == 200 and "pothole" in html
    created = client.post("/admin/routing-rules", data={
        "csrf_token": csrf_from(html), "position": "1", "category_code": "pothole", "keywords": "school,  hospital",
        "service_id": highways.id, "queue_id": "0", "priority": "urgent", "sla_hours": "4", "active": "y"})
    assert created.status_code == 302
    rule = db.session.query(RoutingRule).filter_by(priority="urgent").one()
    assert rule.keywords == "school, hospital" and rule.sla_hours == 4
    _, html = page(client, f"/admin/routing-rules/{rule.id}")
    edited = client.post(f"/admin/routing-rules/{rule.id}", data={
        "csrf_token": csrf_from(html), "position": "1", "category_code": "pothole", "keywords": "school",
        "service_id": highways.id, "queue_id": "0", "priority": "high", "sla_hours": "", "active": "y"})
    assert edited.status_code == 302
    db.session.expire_all()
    assert (rule.priority, rule.sla_hours, rule.keywords) == ("high", None, "school")
    bad = client.post("/admin/routing-rules", data={"csrf_token": csrf_from(html), "category_code": "pothole",
                                                     "service_id": "x", "position": "-5"})
    assert bad.status_code == 400
    deleted = client.post(f"/admin/routing-rules/{rule.id}/delete", data={"csrf_token": csrf_from(html)})
    assert deleted.status_code == 302 and db.session.get(RoutingRule, rule.id) is None
    actions = {a.action for a in db.session.query(AuditLog)}
    assert {"routing_rule.create", "routing_rule.update", "routing_rule.delete"} <= actions


def test_a_routing_rule_cannot_send_a_case_to_another_services_queue(client, auth, make_user, highways, db):
    libraries = factories.service("libraries", "Libraries", categories=(("overdue", "Overdue book"),))
    auth.login(make_user("admin"))
    _, html = page(client, "/admin/routing-rules")
    refused = client.post("/admin/routing-rules", data={
        "csrf_token": csrf_from(html), "position": "1", "category_code": "pothole", "service_id": highways.id,
        "queue_id": db.session.query(Queue.id).filter_by(service_id=libraries.id).scalar(), "priority": "normal",
        "active": "y"})
    assert refused.status_code == 400 and "that queue belongs to another service" in refused.get_data(as_text=True)
    assert db.session.query(RoutingRule).filter_by(service_id=highways.id, position=1).count() == 0


def test_only_admins_see_routing_rules(agent_client, highways):
    assert agent_client.get("/admin/routing-rules").status_code == 403


def test_unknown_case_page_is_404(officer_client):
    assert officer_client.get("/cases/CAS-999999").status_code == 404
    assert re.search("not", officer_client.get("/cases/%3Cscript%3E").get_data(as_text=True), re.I)


def test_the_customer_page_links_to_its_cases_and_to_raising_one(agent_client, highways):
    customer = factories.customer()
    case = factories.case(customer)
    html = agent_client.get(f"/customers/{customer.id}").get_data(as_text=True)
    assert f'href="/cases/{case.reference}"' in html
    assert f'href="/customers/{customer.id}/cases/new"' in html
