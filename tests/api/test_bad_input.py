"""Bad input gets a clear 4xx in the contract's error shape, never a 500, and loses nothing."""
import pytest

from crm.extensions import db
from crm.models import Contact, Customer
from tests import factories


def assert_error_shape(response, status):
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    error = response.json["error"]
    assert set(error) == {"code", "message", "fields"}
    assert isinstance(error["code"], str) and error["message"]
    return error


@pytest.mark.parametrize("body", [
    {},
    {"name": ""},
    {"name": 42},
    {"name": "X", "email": "not-an-email"},
    {"name": "X", "phone": "hello"},
    {"name": "X", "unknown": 1},
    {"name": "X", "address": "a string"},
    {"name": "X" * 500},
    [],
    "just a string",
])
def test_bad_customer_bodies_are_422(client, agent_headers, body):
    error = assert_error_shape(client.post("/api/v1/customers", json=body, headers=agent_headers), 422)
    assert error["fields"]
    assert db.session.query(Customer).count() == 0


@pytest.mark.parametrize("body", [
    {"channel": "phone"},
    {"channel": "carrier-pigeon", "customer_id": 1},
    {"channel": "phone", "customer_id": "one"},
    {"channel": "phone", "customer_id": 1, "caller": {"name": "Both"}},
    {"channel": "phone", "customer_id": 1, "outcome": "sort of"},
    {"channel": "phone", "customer_id": 1, "started_at": "yesterday"},
    {"channel": "phone", "customer_id": 1, "case": {"service": "highways"}},
    {"channel": "phone", "caller": {"name": "X", "phone": "12"}},
])
def test_bad_contact_bodies_are_422(client, agent_headers, body, app):
    factories.customer("Someone")
    assert_error_shape(client.post("/api/v1/contacts", json=body, headers=agent_headers), 422)
    assert db.session.query(Contact).count() == 0


def test_malformed_json_is_400(client, agent_headers):
    response = client.post("/api/v1/customers", data="{not json", headers={**agent_headers,
                                                                         "Content-Type": "application/json"})
    assert_error_shape(response, 400)


def test_unknown_ids_are_404(client, agent_headers):
    assert_error_shape(client.get("/api/v1/customers/999999", headers=agent_headers), 404)
    assert_error_shape(client.get("/api/v1/customers/999999/timeline", headers=agent_headers), 404)
    response = client.post("/api/v1/contacts", json={"channel": "phone", "customer_id": 999999, "outcome": "signposted"},
                           headers=agent_headers)
    assert_error_shape(response, 404)
    assert_error_shape(client.get("/api/v1/nowhere", headers=agent_headers), 404)


def test_unknown_service_on_a_raised_case_is_422_and_stores_nothing(client, agent_headers, app):
    jane = factories.customer("Jane")
    response = client.post("/api/v1/contacts", headers=agent_headers, json={
        "channel": "phone", "customer_id": jane.id, "outcome": "case_raised",
        "case": {"service": "nope", "category": "x", "title": "t"}})
    assert_error_shape(response, 422)
    assert db.session.query(Contact).count() == 0


def test_huge_bodies_are_413(client, agent_headers, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    body = '{"name": "' + "x" * (2 * 1024 * 1024) + '"}'
    response = client.post("/api/v1/customers", data=body, headers={**agent_headers,
                                                                    "Content-Type": "application/json"})
    assert_error_shape(response, 413)


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "limit=1000", "before=%%%", "before=bm90LWEtY3Vyc29y"])
def test_bad_timeline_queries_are_4xx(client, agent_headers, app, query):
    jane = factories.customer("Jane")
    response = client.get(f"/api/v1/customers/{jane.id}/timeline?{query}", headers=agent_headers)
    assert_error_shape(response, 422)


def test_wrong_method_is_405_in_the_error_shape(client, agent_headers):
    assert_error_shape(client.delete("/api/v1/customers", headers=agent_headers), 405)


def test_a_bad_bearer_token_is_401(client):
    response = client.get("/api/v1/customers", headers={"Authorization": "Bearer nope"})
    assert_error_shape(response, 401)
