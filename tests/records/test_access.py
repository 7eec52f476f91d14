"""Only the records role runs the records actions; admins grant the role but do not hold it."""
import pytest

from tests import factories

REFUSED = ("agent", "supervisor", "service_officer", "admin")


@pytest.mark.parametrize("role", REFUSED)
def test_api_refuses_everyone_but_records(app, client, make_user, api_token, role):
    person = factories.customer()
    headers = api_token(make_user(role))
    calls = [
        client.post(f"/api/v1/customers/{person.id}/subject-access", headers=headers, json={}),
        client.post(f"/api/v1/customers/{person.id}/erase", headers=headers, json={"reason": "x", "dry_run": True}),
        client.post(f"/api/v1/customers/{person.id}/legal-holds", headers=headers, json={"reason": "x"}),
        client.post("/api/v1/records/retention/runs", headers=headers, json={"dry_run": True}),
        client.get("/api/v1/records/audit", headers=headers),
    ]
    assert [c.status_code for c in calls] == [403] * len(calls)
    assert all(c.get_json()["error"]["code"] == "forbidden" for c in calls)


@pytest.mark.parametrize("role", REFUSED)
def test_pages_refuse_everyone_but_records(app, client, auth, make_user, role):
    person = factories.customer()
    auth.login(make_user(role))
    for path in ("/records/", f"/records/customers/{person.id}", "/records/audit"):
        assert client.get(path).status_code == 403, path


def test_without_sign_in_the_api_answers_401(app, client):
    person = factories.customer()
    assert client.post(f"/api/v1/customers/{person.id}/erase", json={"reason": "x"}).status_code == 401


def test_records_officer_is_let_through(app, client, officer_headers):
    person = factories.customer()
    assert client.post(f"/api/v1/customers/{person.id}/subject-access", headers=officer_headers).status_code == 200
    assert client.post("/api/v1/records/retention/runs", headers=officer_headers, json={}).status_code == 200


def test_an_admin_grants_the_records_role(app, runner):
    result = runner.invoke(args=["crm", "create-user", "ig2@test.example", "--role", "records", "--name", "IG",
                                 "--password", "correct-horse-battery"])
    assert result.exit_code == 0 and "records" in result.output


def test_records_home_finds_a_customer_by_number(app, client, auth, officer):
    person = factories.customer()
    auth.login(officer)
    home = client.get("/records/")
    assert home.status_code == 200 and "Live legal holds" in home.get_data(as_text=True)
    assert client.get("/records/", query_string={"customer": person.id}).status_code == 302
    assert "No customer number" in client.get("/records/", query_string={"customer": "x1"},
                                              follow_redirects=True).get_data(as_text=True)


def test_openapi_documents_the_records_endpoints(app, client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/api/v1/customers/{customer_id}/subject-access" in paths
    assert "/api/v1/records/audit" in paths


def test_records_home_searches_customers(app, client, auth, officer):
    person = factories.customer(name="Searchable Resident", email="findme@example.org")
    auth.login(officer)
    page = client.get("/records/", query_string={"q": "findme@example.org"}).get_data(as_text=True)
    assert f"/records/customers/{person.id}" in page
    assert "No customer matches" in client.get("/records/", query_string={"q": "nobody-here"}).get_data(as_text=True)
