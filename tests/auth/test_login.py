"""Staff sign-in: CSRF on every form, throttling, lock-out, safe cookies and redirects."""
import pytest

from crm.extensions import db
from tests.conftest import PASSWORD, csrf_from


def test_sign_in_and_out(client, auth, agent):
    response = auth.login(agent)
    assert response.status_code == 302 and response.headers["Location"].endswith("/")
    assert client.get("/console").status_code == 200
    auth.logout()
    assert client.get("/console").status_code == 302


def test_a_form_post_without_the_csrf_token_is_refused(client, agent):
    response = client.post("/login", data={"email": agent.email, "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/console").status_code == 302  # not signed in


def test_a_console_form_without_csrf_is_refused(agent_client, app):
    from tests import factories

    jane = factories.customer("Jane")
    response = agent_client.post(f"/customers/{jane.id}/calls", data={"category": "general_enquiry",
                                                                      "outcome": "signposted"})
    assert response.status_code == 400


def test_api_calls_with_the_session_cookie_need_the_csrf_header(agent_client, auth):
    refused = agent_client.post("/api/v1/customers", json={"name": "Via Cookie"})
    assert refused.status_code == 400 and refused.json["error"]["code"] == "bad_request"
    accepted = agent_client.post("/api/v1/customers", json={"name": "Via Cookie"},
                                 headers={"X-CSRFToken": auth.csrf()})
    assert accepted.status_code == 201


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(client, auth, agent):
    response = auth.login(agent, password="wrong-password-1")
    assert response.status_code == 401
    assert "not recognised" in response.get_data(as_text=True)


def test_repeated_failures_lock_the_account_even_with_the_right_password(client, auth, agent, app):
    for _ in range(app.config["LOGIN_ATTEMPTS_BEFORE_LOCK"]):
        auth.login(agent, password="wrong-password-1")
    db.session.refresh(agent)
    assert agent.locked_until is not None
    assert auth.login(agent).status_code == 401


def test_sign_in_posts_are_rate_limited_per_address(client, auth, make_user):
    user = make_user("agent")
    statuses = [auth.login(user, password=f"wrong-{i}-password").status_code for i in range(12)]
    assert 429 in statuses


def test_session_cookie_is_httponly_and_samesite(client, auth, agent):
    response = auth.login(agent)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_next_parameter_cannot_send_staff_off_site(client, agent, target):
    page = client.get("/login")
    response = client.post(f"/login?next={target}", data={
        "email": agent.email, "password": PASSWORD, "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302 and "evil.example" not in response.headers["Location"]


def test_passwords_are_stored_as_argon2_hashes(agent):
    assert agent.password_hash.startswith("$argon2id$") and PASSWORD not in agent.password_hash
