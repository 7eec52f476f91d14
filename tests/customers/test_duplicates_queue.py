"""The possible-duplicates queue: supervisors list, preview, merge, dismiss and unmerge, by page and API."""
import pytest
from sqlalchemy import select

from crm.customers.identity import resolve_customer
from crm.extensions import db
from crm.models import AuditLog, Customer, PossibleDuplicate
from tests import factories
from tests.conftest import csrf_from


@pytest.fixture
def queued(app):
    victim = factories.customer("Victoria Stone", email="victoria@example.org", phone="07700 900002")
    claimant = resolve_customer("Mallory Smith", "mallory@example.net", "07700 900002", source="chat")
    db.session.commit()
    return db.session.scalar(select(PossibleDuplicate)), victim, claimant


def test_the_api_lists_previews_and_merges_a_pair_choosing_the_main_details(queued, client, make_user, api_token):
    row, victim, claimant = queued
    headers = api_token(make_user("supervisor"))
    listed = client.get("/api/v1/duplicates", headers=headers)
    assert listed.status_code == 200
    [item] = listed.json["items"]
    assert item["customer"]["name"] == "Mallory Smith" and item["other"]["name"] == "Victoria Stone"
    assert item["reasons"][0]["kind"] == "phone"
    assert {i["value"]: i["source"] for i in item["customer"]["identities"]} == {"mallory@example.net": "chat"}
    chosen = next(i["id"] for i in item["customer"]["identities"])
    merged = client.post(f"/api/v1/duplicates/{row.id}/merge", json={"main": {"email": chosen}}, headers=headers)
    assert merged.status_code == 200, merged.json
    assert merged.json["id"] == victim.id and merged.json["email"] == "mallory@example.net"
    assert client.get("/api/v1/duplicates", headers=headers).json["items"] == []
    again = client.post(f"/api/v1/duplicates/{row.id}/merge", json={}, headers=headers)
    assert again.status_code == 409


def test_the_api_unmerges_a_merged_away_customer(queued, client, make_user, api_token):
    row, victim, claimant = queued
    headers = api_token(make_user("supervisor"))
    assert client.post(f"/api/v1/duplicates/{row.id}/merge", json={}, headers=headers).status_code == 200
    undone = client.post(f"/api/v1/customers/{claimant.id}/unmerge", json={"reason": "not her"}, headers=headers)
    assert undone.status_code == 200, undone.json
    assert undone.json["id"] == claimant.id and undone.json["merged_into_id"] is None
    assert {i["value"] for i in undone.json["identities"]} == {"mallory@example.net"}
    assert client.post(f"/api/v1/customers/{claimant.id}/unmerge", json={}, headers=headers).status_code == 404
    assert client.post("/api/v1/customers/999999/unmerge", json={}, headers=headers).status_code == 404


def test_dismissing_keeps_the_records_apart_and_is_audited(queued, client, make_user, api_token):
    row, victim, claimant = queued
    headers = api_token(make_user("supervisor"))
    response = client.post(f"/api/v1/duplicates/{row.id}/dismiss", json={"note": "different people"}, headers=headers)
    assert response.status_code == 200 and response.json["status"] == "dismissed"
    assert db.session.get(Customer, claimant.id).merged_into_id is None
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "customer.duplicate_dismissed")) is not None
    assert client.get("/api/v1/duplicates?status=dismissed", headers=headers).json["items"][0]["id"] == row.id


@pytest.mark.parametrize("role,allowed", [("agent", False), ("service_officer", False), ("supervisor", True),
                                          ("admin", True)])
def test_only_supervisors_and_admins_review_duplicates(queued, client, make_user, api_token, role, allowed):
    row, _, claimant = queued
    headers = api_token(make_user(role))
    for method, path, body in (("GET", "/api/v1/duplicates", None), ("GET", f"/api/v1/duplicates/{row.id}", None),
                               ("POST", f"/api/v1/duplicates/{row.id}/dismiss", {}),
                               ("POST", f"/api/v1/customers/{claimant.id}/unmerge", {})):
        status = client.open(path, method=method, json=body, headers=headers).status_code
        assert (status == 403) is not allowed, (method, path, status)


def test_bad_input_to_the_queue_is_a_4xx(queued, client, make_user, api_token):
    row, _, _ = queued
    headers = api_token(make_user("supervisor"))
    assert client.get("/api/v1/duplicates?status=bogus", headers=headers).status_code == 422
    assert client.get("/api/v1/duplicates/999999", headers=headers).status_code == 404
    assert client.post(f"/api/v1/duplicates/{row.id}/merge", json={"keep": "both"}, headers=headers).status_code == 422
    assert client.post(f"/api/v1/duplicates/{row.id}/merge", json={"main": {"email": 999999}},
                       headers=headers).status_code == 422


def test_the_review_pages_merge_and_undo(queued, client, auth, make_user):
    row, victim, claimant = queued
    auth.login(make_user("supervisor"))
    listing = client.get("/duplicates").get_data(as_text=True)
    assert "Mallory Smith" in listing and "Victoria Stone" in listing
    page = client.get(f"/duplicates/{row.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Are these the same person?" in html and "07700 900002" in html
    merged = client.post(f"/duplicates/{row.id}/merge",
                         data={"csrf_token": csrf_from(html), "keep": "other", "keep_name": "target"})
    assert merged.status_code == 303
    customer_page = client.get(f"/customers/{victim.id}").get_data(as_text=True)
    assert "Undo this merge" in customer_page
    merge_id = db.session.scalar(select(PossibleDuplicate.merge_id))
    undone = client.post(f"/customers/{victim.id}/unmerge/{merge_id}",
                         data={"csrf_token": csrf_from(customer_page), "reason": "mistake"})
    assert undone.status_code == 303
    assert db.session.get(Customer, claimant.id).merged_into_id is None


def test_the_customer_page_warns_before_the_history_when_nothing_is_verified(queued, client, auth, make_user):
    row, victim, claimant = queued
    auth.login(make_user("agent"))
    html = client.get(f"/customers/{claimant.id}").get_data(as_text=True)
    assert "Not verified" in html and html.index("Not verified") < html.index("Timeline")
    assert "Possible duplicate" in html
