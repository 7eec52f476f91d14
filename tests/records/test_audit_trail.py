"""The audit trail: searchable by person, customer, case, action and date; CSV; entries cannot be changed."""
import csv
import io
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, select, update

from crm.audit import audit
from crm.errors import Forbidden
from crm.extensions import db
from crm.models import AuditLog
from tests import factories


def _entries(agent, other):
    factories.service()
    person = factories.customer(name="Audit Person")
    case = factories.case(person)
    audit(agent, "customer.view_sensitive", "customer", person.id)
    audit(other, "case.reroute", "case", case.id, reference=case.reference)
    audit(other, "customer.merge", "customer", person.id, names=["=cmd|' /C calc'!A0"])
    db.session.commit()
    return person, case


def test_search_by_person_customer_case_action_and_date(app, client, agent, make_user, officer_headers):
    other = make_user("supervisor", email="sup@test.example", name="Sue Pervisor")
    person, case = _entries(agent, other)

    def ids(**query):
        answer = client.get("/api/v1/records/audit", query_string=query, headers=officer_headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return [e["action"] for e in answer.get_json()["items"]]

    assert ids(person="sup@test") == ["customer.merge", "case.reroute"]
    assert ids(person="Pervisor", action="case.") == ["case.reroute"]
    assert ids(customer=person.id) == ["customer.merge", "customer.view_sensitive"]
    assert ids(case=case.reference) == ["case.reroute"]
    today = date.today()
    assert len(ids(**{"from": today.isoformat(), "to": today.isoformat()})) >= 3
    assert ids(**{"to": (today - timedelta(days=2)).isoformat()}) == []
    bad = client.get("/api/v1/records/audit", query_string={"from": "yesterday"}, headers=officer_headers)
    assert bad.status_code == 422


def test_csv_export_has_every_match_and_neutralises_formulas(app, client, agent, make_user, officer_headers):
    person, _ = _entries(agent, make_user("supervisor"))
    answer = client.get("/api/v1/records/audit", query_string={"customer": person.id, "format": "csv"},
                        headers=officer_headers)
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [r["action"] for r in rows] == ["customer.merge", "customer.view_sensitive"]
    assert rows[1]["actor"] == agent.email
    assert "cmd|" in rows[0]["details"]


def test_page_searches_and_links_the_csv(app, client, auth, agent, officer):
    person, _ = _entries(agent, agent)
    auth.login(officer)
    page = client.get("/records/audit", query_string={"customer": person.id})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "customer.view_sensitive" in html and "format=csv" in html
    assert client.get("/records/audit", query_string={"customer": "abc"}).status_code == 422


def test_entries_cannot_be_changed_or_deleted_through_the_app(app, agent):
    audit(agent, "user.login", "user", agent.id)
    db.session.commit()
    login = select(AuditLog).where(AuditLog.action == "user.login")
    entry = db.session.scalar(login)
    entry.action = "something.else"
    with pytest.raises(Forbidden):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.scalar(login))
    with pytest.raises(Forbidden):
        db.session.flush()
    db.session.rollback()
    with pytest.raises(Forbidden):
        db.session.execute(update(AuditLog).values(action="x"))
    db.session.rollback()
    with pytest.raises(Forbidden):
        db.session.execute(delete(AuditLog))
    db.session.rollback()
    assert db.session.scalar(login) is not None
