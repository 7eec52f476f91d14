"""The email API from outside: POST /api/v1/inbound/email (the conversation endpoints: tests/conversations)."""
import pytest

from tests.channels.mailbuilder import raw_email

RFC822 = {"Content-Type": "message/rfc822"}


def post_email(client, raw, headers):
    return client.post("/api/v1/inbound/email", data=raw, headers={**RFC822, **headers})


def test_inbound_email_with_a_staff_token_ingests_then_reports_duplicate(client, services, agent_headers):
    raw = raw_email(sender="Jane Resident <jane@example.org>", subject="Pothole", message_id="api-1@example.org")
    first = post_email(client, raw, agent_headers)
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["status"] == "ingested" and body["case_reference"].startswith("CAS-")
    assert isinstance(body["conversation_id"], int) and isinstance(body["customer_id"], int)
    again = post_email(client, raw, agent_headers).get_json()
    assert again["status"] == "duplicate" and again["conversation_id"] == body["conversation_id"]


def test_inbound_email_accepts_the_dedicated_ingest_token(client, app, services):
    app.config["CRM_INBOUND_EMAIL_TOKEN"] = "ingest-secret-0123456789"
    response = post_email(client, raw_email(), {"Authorization": "Bearer ingest-secret-0123456789"})
    assert response.status_code == 200 and response.get_json()["status"] == "ingested"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
def test_inbound_email_refuses_without_a_valid_token(client, app, services, headers):
    app.config["CRM_INBOUND_EMAIL_TOKEN"] = "ingest-secret-0123456789"
    response = post_email(client, raw_email(), headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_inbound_email_refuses_a_signed_in_browser_session(agent_client, services):
    response = agent_client.post("/api/v1/inbound/email", data=raw_email(), headers=RFC822)
    assert response.status_code == 401


def test_inbound_email_bad_input_is_a_clear_4xx(client, services, agent_headers):
    wrong_type = client.post("/api/v1/inbound/email", data=raw_email(),
                             headers={**agent_headers, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415 and wrong_type.get_json()["error"]["code"] == "unsupported_media_type"
    # Labelled JSON but not JSON: refused before the view by the API's body check, still a clear 4xx.
    not_json = client.post("/api/v1/inbound/email", data=raw_email(),
                           headers={**agent_headers, "Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.get_json()["error"]
    empty = post_email(client, b"", agent_headers)
    assert empty.status_code == 422
    garbage = post_email(client, b"\x00\xff\xfe not an email at all", agent_headers)
    assert garbage.status_code == 200 and garbage.get_json()["status"] == "quarantined"
    assert garbage.get_json()["reason"]


def test_inbound_email_over_the_request_limit_is_413(client, app, services, agent_headers):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = post_email(client, raw_email(body="x" * 5000), agent_headers)
    assert response.status_code == 413


def test_the_openapi_document_describes_the_email_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "message/rfc822" in paths["/api/v1/inbound/email"]["post"]["requestBody"]["content"]
