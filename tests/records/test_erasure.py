"""Erasure: no personal value survives anywhere, report totals stay, a tombstone says it happened."""
import json
from datetime import date, timedelta

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import AuditLog, ContactDailyTotal, ErasureTombstone, OutboundEmail
from tests import factories

from .history import EMAIL, NAME, OLD_EMAIL, PERSONAL, PHONE, POSTCODE, build_history, scan_database


def _report(client, headers):
    today = date.today()
    response = client.get(f"/api/v1/reports/contacts?from={(today - timedelta(days=2)).isoformat()}"
                          f"&to={(today + timedelta(days=1)).isoformat()}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _totals():
    return db.session.execute(select(func.sum(ContactDailyTotal.contacts), func.sum(ContactDailyTotal.handled),
                                     func.sum(ContactDailyTotal.handle_seconds))).one()


def test_erasure_leaves_no_personal_value_while_report_totals_stay(
        app, client, agent, agent_headers, officer_headers, make_user, api_token):
    customer_id, stranger_id = build_history(client, agent, agent_headers)
    supervisor_headers = api_token(make_user("supervisor"))
    report_before, totals_before = _report(client, supervisor_headers), _totals()
    assert scan_database(PERSONAL), "the history should hold the person's values before erasure"

    dry = client.post(f"/api/v1/customers/{customer_id}/erase", headers=officer_headers,
                      json={"reason": "Art. 17 request", "dry_run": True})
    assert dry.status_code == 200, dry.get_data(as_text=True)
    counts = dry.get_json()["counts"]
    assert {k: dry.get_json()[k] for k in counts} == counts  # the counts also stand at the top, as the CLI prints them
    assert counts["contacts"] == 5 and counts["customers"] == 2 and counts["identities"] == 4
    assert counts["attachments"] == 2 and counts["inbound_emails"] == 1 and counts["resident_accounts"] == 1
    assert scan_database(PERSONAL), "a dry run changes nothing"

    response = client.post(f"/api/v1/customers/{customer_id}/erase", headers=officer_headers,
                           json={"reason": "Art. 17 request", "reference": "ER-2026-7"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["counts"] == counts
    db.session.expire_all()

    assert scan_database(PERSONAL) == []
    pending = select(OutboundEmail.status).where(OutboundEmail.status.in_(("queued", "retrying", "sending")))
    assert db.session.scalars(pending).all() == []  # mail not yet sent to them never will be
    for q in (NAME, "Quenby", EMAIL, OLD_EMAIL, PHONE, POSTCODE, "ZZ9"):
        found = client.get("/api/v1/customers", query_string={"q": q}, headers=agent_headers)
        assert found.status_code == 200 and found.get_json()["items"] == [], q
    record = client.get(f"/api/v1/customers/{customer_id}", headers=agent_headers)
    timeline = client.get(f"/api/v1/customers/{customer_id}/timeline", headers=agent_headers)
    for answer in (record, timeline):
        assert answer.status_code == 200
        text = answer.get_data(as_text=True).lower()
        assert not [v for v in PERSONAL if v in text]
    assert len(timeline.get_json()["items"]) >= 5  # the contacts are still there, anonymously
    assert _report(client, supervisor_headers) == report_before
    assert _totals() == totals_before
    # The stranger is untouched.
    assert client.get(f"/api/v1/customers/{stranger_id}", headers=agent_headers).get_json()["name"] == "Bartholomew Stranger"

    tomb = db.session.scalar(select(ErasureTombstone))
    assert tomb.customer_id == customer_id and tomb.reason == "Art. 17 request"
    assert tomb.request_reference == "ER-2026-7" and tomb.counts == counts
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "records.erase"))
    assert entry.details["request_reference"] == "ER-2026-7" and entry.actor_id is not None


def test_command_dry_run_counts_and_then_erases(app, client, agent, agent_headers, runner):
    customer_id, _ = build_history(client, agent, agent_headers)
    dry = runner.invoke(args=["crm", "erase-customer", str(customer_id), "--reason", "request", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    counts = json.loads(dry.stdout.strip().splitlines()[-1])
    assert counts["dry_run"] is True and counts["contacts"] == 5
    assert scan_database(PERSONAL)
    done = runner.invoke(args=["crm", "erase-customer", str(customer_id), "--reason", "request"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {**counts, "dry_run": False}
    db.session.expire_all()
    assert scan_database(PERSONAL) == []


def test_erasure_needs_a_reason(app, client, officer_headers):
    person = factories.customer()
    response = client.post(f"/api/v1/customers/{person.id}/erase", headers=officer_headers, json={"reason": ""})
    assert response.status_code == 422
    response = client.post(f"/api/v1/customers/{person.id}/erase", headers=officer_headers, json={"dry_run": "maybe"})
    assert response.status_code == 422
