"""No page, to staff or residents, ever shows a traceback: friendly pages for every status, JSON under /api."""
import re

import pytest
import requests
from sqlalchemy import text

from crm.extensions import db
from tests import factories
from tests.conftest import PASSWORD
from tests.support import ServerProcess

TRACEBACK = re.compile(r"Traceback|File \"|sqlalchemy|OperationalError|ProgrammingError|werkzeug", re.I)


AWAY = ("services", "form_definitions")


@pytest.fixture
def tables_away(app):
    """Rename tables under the running server, so views that read them raise; put them back after."""
    def away():
        with db.engine.begin() as conn:
            for table in AWAY:
                conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
    yield away
    db.session.remove()
    with db.engine.begin() as conn:
        names = [r[0] for r in conn.execute(text(
            "SELECT name FROM sqlite_master WHERE type='table'" if db.engine.dialect.name == "sqlite"
            else "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))]
        for table in AWAY:
            if f"{table}_away" in names:
                conn.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))


def _staff_session(url, user):
    session = requests.Session()
    page = session.get(url + "/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    answer = session.post(url + "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    return session


def test_an_exception_in_a_view_of_a_real_server_gives_friendly_pages_and_json_never_a_traceback(
        app, database_url, tables_away):
    agent = factories.user("agent")
    token = factories.token(agent)
    server = ServerProcess(database_url)
    try:
        staff = _staff_session(server.url, agent)
        tables_away()

        # A database error may be answered 503 (crm.db_retry) rather than 500: a friendly page either way.
        resident_page = requests.get(server.url + "/forms/", timeout=10)
        assert resident_page.status_code in (500, 503)
        assert "govuk-heading-l" in resident_page.text and "Sorry, the" in resident_page.text
        assert not TRACEBACK.search(resident_page.text)

        staff_page = staff.get(server.url + "/agent/chats", timeout=10)
        assert staff_page.status_code in (500, 503)
        assert "<h1>" in staff_page.text and "Sign out" in staff_page.text
        assert not TRACEBACK.search(staff_page.text)

        api = requests.get(server.url + "/api/v1/services", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert api.status_code in (500, 503)
        assert set(api.json()) == {"error"} and set(api.json()["error"]) == {"code", "message", "fields"}
    finally:
        server.stop()


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503])
def test_every_status_has_a_friendly_resident_page_and_staff_page(app, status):
    from flask import render_template

    with app.test_request_context("/forms/"):
        resident = render_template("portal/error.html", status=status, message="Detail for the reader.")
    with app.test_request_context("/console"):
        staff = render_template("errors/error.html", status=status, message="Detail for the reader.")
    for page in (resident, staff):
        assert "Detail for the reader." in page and "<h1" in page
    assert "govuk-heading-l" in resident


def test_an_unknown_address_shows_residents_the_council_page_and_staff_the_console_page(client, auth, make_user):
    resident = client.get("/no-such-page")
    assert resident.status_code == 404 and "govuk-heading-l" in resident.get_data(as_text=True)
    auth.login(make_user("agent"))
    staff = client.get("/no-such-page")
    assert staff.status_code == 404 and "Sign out" in staff.get_data(as_text=True)


def test_an_unknown_api_address_answers_json_in_the_contract_shape(client):
    answer = client.get("/api/v1/no-such-thing")
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"
