"""Every staff endpoint checks the role: a table of role × endpoint, API and console alike."""
import pytest

from crm.auth.roles import CONSOLE_STAFF
from crm.models import ROLES
from tests import factories

# Records officers and article editors work outside the console: its pages and API refuse them.
ALL = set(CONSOLE_STAFF)
WRITERS = {"agent", "supervisor", "admin"}
ADMIN = {"admin"}


@pytest.fixture
def world(app):
    factories.service()
    jane = factories.customer("Jane Resident", email="jane@example.org")
    dupe = factories.customer("J Resident", phone="07700 900123")
    return {"customer": jane.id, "dupe": dupe.id}


# (method, path template, JSON body or None, roles allowed)
API_TABLE = [
    ("GET", "/api/v1/customers?q=jane", None, ALL),
    ("POST", "/api/v1/customers", {"name": "New Person"}, WRITERS),
    ("GET", "/api/v1/customers/{customer}", None, ALL),
    ("PATCH", "/api/v1/customers/{customer}", {"name": "Jane R"}, WRITERS),
    ("POST", "/api/v1/customers/{customer}/merge", {"source_id": "{dupe}"}, WRITERS),
    ("GET", "/api/v1/customers/{customer}/timeline", None, ALL),
    ("POST", "/api/v1/contacts", {"channel": "phone", "customer_id": "{customer}", "outcome": "signposted"}, ALL),
]

PAGE_TABLE = [
    ("GET", "/console", ALL),
    ("GET", "/customers/{customer}", ALL),
    ("GET", "/customers/new", WRITERS),
    ("GET", "/admin/users", ADMIN),
]


def fill(template, world):
    if isinstance(template, dict):
        return {k: fill(v, world) for k, v in template.items()}
    if isinstance(template, str) and template.startswith("{") and template.endswith("}") and "/" not in template:
        return world[template[1:-1]]
    if isinstance(template, str):
        return template.format(**world)
    return template


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method,path,body,allowed", API_TABLE, ids=[f"{m} {p}" for m, p, _, _ in API_TABLE])
def test_api_endpoint_role_table(world, client, make_user, api_token, role, method, path, body, allowed):
    headers = api_token(make_user(role))
    response = client.open(fill(path, world), method=method, json=fill(body, world), headers=headers)
    if role in allowed:
        assert response.status_code < 400, (role, response.status_code, response.json)
    else:
        assert response.status_code == 403, (role, response.status_code)
        assert response.json["error"]["code"] == "forbidden"


@pytest.mark.parametrize("method,path,body,allowed", API_TABLE, ids=[f"{m} {p}" for m, p, _, _ in API_TABLE])
def test_api_endpoint_without_credentials_is_401(world, client, method, path, body, allowed):
    response = client.open(fill(path, world), method=method, json=fill(body, world))
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method,path,allowed", PAGE_TABLE, ids=[p for _, p, _ in PAGE_TABLE])
def test_console_page_role_table(world, client, auth, make_user, role, method, path, allowed):
    auth.login(make_user(role))
    response = client.open(fill(path, world), method=method)
    assert response.status_code == (200 if role in allowed else 403), (role, path)


@pytest.mark.parametrize("path", [p for _, p, _ in PAGE_TABLE])
def test_console_pages_send_strangers_to_sign_in(world, client, path):
    response = client.get(fill(path, world))
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_revoked_token_no_longer_works(app, client, make_user):
    from crm.auth.accounts import create_token, revoke_token
    from crm.extensions import db

    user = make_user("agent")
    secret = create_token(user)
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/customers?q=x", headers=headers).status_code == 200
    revoke_token(user.tokens[0])
    db.session.commit()
    assert client.get("/api/v1/customers?q=x", headers=headers).status_code == 401


def test_a_deactivated_users_token_no_longer_works(app, client, make_user, api_token):
    from crm.extensions import db

    user = make_user("agent")
    headers = api_token(user)
    user.active = False
    db.session.commit()
    assert client.get("/api/v1/customers?q=x", headers=headers).status_code == 401
