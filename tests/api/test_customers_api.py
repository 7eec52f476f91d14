"""The customers API from outside: create, read, search, patch."""
from tests import factories


def test_create_a_customer_with_identities_and_address(client, agent_headers):
    response = client.post("/api/v1/customers", headers=agent_headers, json={
        "name": "Mary Bell", "email": "Mary.Bell@Example.org", "phone": "07700 900321",
        "address": {"line1": "3 Main Street", "town": "Penrith", "postcode": "ca118qf"}})
    assert response.status_code == 201, response.json
    body = response.json
    assert body["email"] == "mary.bell@example.org" and body["phone"] == "+447700900321"
    assert body["addresses"][0]["postcode"] == "CA11 8QF"
    read = client.get(f"/api/v1/customers/{body['id']}", headers=agent_headers)
    assert read.status_code == 200 and {i["kind"] for i in read.json["identities"]} == {"email", "phone"}


def test_search_endpoint_answers_items(client, agent_headers, app):
    made = factories.customer("Peter Routledge", phone="01768 123456")
    for q in ("routledge", "01768123456", "+44 1768 123456"):
        response = client.get("/api/v1/customers", query_string={"q": q}, headers=agent_headers)
        assert response.status_code == 200
        assert [c["id"] for c in response.json["items"]] == [made.id]


def test_patch_adds_an_email_and_renames(client, agent_headers, app):
    made = factories.customer("P Routledge")
    response = client.patch(f"/api/v1/customers/{made.id}", headers=agent_headers,
                            json={"name": "Peter Routledge", "add_email": "peter@example.org"})
    assert response.status_code == 200
    assert response.json["name"] == "Peter Routledge" and response.json["email"] == "peter@example.org"


def test_an_email_already_on_another_customer_is_a_409(client, agent_headers, app):
    factories.customer("Owner", email="taken@example.org")
    response = client.post("/api/v1/customers", headers=agent_headers,
                           json={"name": "Someone", "email": "TAKEN@example.org"})
    assert response.status_code == 409
    assert response.json["error"]["code"] == "identity_taken"
    assert "email" in response.json["error"]["fields"]


def test_openapi_document_is_generated_from_the_code(client):
    doc = client.get("/api/v1/openapi.json")
    assert doc.status_code == 200
    paths = doc.json["paths"]
    for path in ("/api/v1/customers", "/api/v1/customers/{customer_id}",
                 "/api/v1/customers/{customer_id}/timeline", "/api/v1/contacts"):
        assert path in paths
    assert "ContactIn" in doc.json["components"]["schemas"]
