"""Sessions end when the user signs out, gets a new password, is deactivated or changes role; revoked
tokens and ended sessions close their live sockets (real server processes, real Socket.IO clients)."""
import re
import threading

import pytest
import requests
import socketio

from crm.auth.sessions import end_sessions
from crm.extensions import db
from crm.models import ApiToken, StaffSocket
from tests import factories
from tests.conftest import PASSWORD, csrf_from
from tests.support import ServerProcess

WAIT = 15


def _stolen_copy(app, client):
    """Return a second client holding a copy of the first one's session cookie (as a thief would)."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _signed_in(thief) -> bool:
    return thief.get("/api/v1/services").status_code == 200


def test_signing_out_ends_a_copied_session_cookie(app, client, auth, make_user):
    auth.login(make_user("agent"))
    thief = _stolen_copy(app, client)
    assert _signed_in(thief)
    auth.logout()
    assert not _signed_in(thief)
    assert thief.get("/api/v1/services").status_code == 401


@pytest.mark.parametrize("change", ["password", "deactivate", "role", "service"])
def test_an_admin_change_to_what_a_session_stands_on_ends_it(app, client, auth, make_user, change):
    user = make_user("service_officer")
    service = factories.service()
    auth.login(user)
    thief = _stolen_copy(app, client)
    assert _signed_in(thief)
    if change == "password":
        user.password_hash = "changed"
    elif change == "deactivate":
        user.active = False
    elif change == "role":
        user.role = "agent"
    else:
        user.service_id = service.id
    db.session.commit()
    assert not _signed_in(thief)


def test_an_unrelated_change_keeps_the_session(app, client, auth, make_user):
    user = make_user("agent")
    auth.login(user)
    user.name, user.chat_capacity = "New Name", 5
    db.session.commit()
    assert _signed_in(client)


def test_an_admin_setting_their_own_password_stays_signed_in_here_only(app, client, auth, make_user):
    admin = make_user("admin")
    auth.login(admin)
    elsewhere = _stolen_copy(app, client)
    page = client.get(f"/admin/users/{admin.id}").get_data(as_text=True)
    answer = client.post(f"/admin/users/{admin.id}", data={
        "csrf_token": csrf_from(page), "name": admin.name, "role": "admin", "service_id": "0",
        "chat_capacity": "3", "active": "y", "new_password": "a-brand-new-password"})
    assert answer.status_code == 302
    assert _signed_in(client) and not _signed_in(elsewhere)


# ---- live sockets, real server --------------------------------------------------------------

class Watched:
    """A python-socketio client that notes when the server disconnects it."""

    def __init__(self, url, namespace, auth=None, cookie=None):
        self.namespace = namespace
        self.gone = threading.Event()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("disconnect", lambda *_: self.gone.set(), namespace=namespace)
        self.sio.connect(url, namespaces=[namespace], auth=auth, transports=["websocket"], wait_timeout=10,
                         # Same User-Agent as the browser session: Flask-Login's strong protection checks it.
                         headers={"Cookie": f"session={cookie}", "User-Agent": requests.utils.default_user_agent()}
                         if cookie else {})

    def call(self, event, data=None):
        return self.sio.call(event, data, namespace=self.namespace, timeout=WAIT)

    def close(self):
        if self.sio.connected:
            self.sio.disconnect()


def _browser_session(url, user, password=PASSWORD) -> requests.Session:
    browser = requests.Session()
    page = browser.get(url + "/login", timeout=10).text
    answer = browser.post(url + "/login", data={"email": user.email, "password": password,
                                                "csrf_token": csrf_from(page)}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    return browser


def _refused(url, namespace, **kw) -> bool:
    try:
        Watched(url, namespace, **kw).close()
    except socketio.exceptions.ConnectionError:
        return True
    return False


@pytest.fixture
def live(app, database_url):
    opened, servers = [], []

    def server():
        started = ServerProcess(database_url, WEBCHAT_SWEEP_SECONDS="0.5", WEBCHAT_HEARTBEAT_SECONDS="2")
        servers.append(started)
        return started

    def socket(*args, **kw):
        watched = Watched(*args, **kw)
        opened.append(watched)
        return watched

    yield server, socket
    for watched in opened:
        try:
            watched.close()
        except Exception:  # noqa: BLE001 - already gone with its server
            pass
    for started in servers:
        started.stop()


def test_revoking_a_token_on_the_admin_page_disconnects_only_that_tokens_sockets(app, live):
    start, socket = live
    server = start()
    agent, admin = factories.user("supervisor"), factories.user("admin")
    revoked_secret, kept_secret = factories.token(agent), factories.token(agent)
    revoked = db.session.query(ApiToken).filter_by(user_id=agent.id).order_by(ApiToken.id).first()
    on_agent = socket(server.url, "/agent", auth={"token": revoked_secret})
    on_supervisor = socket(server.url, "/supervisor", auth={"token": revoked_secret})
    kept = socket(server.url, "/agent", auth={"token": kept_secret})

    browser = _browser_session(server.url, admin)
    page = browser.get(f"{server.url}/admin/users/{agent.id}", timeout=10).text
    answer = browser.post(f"{server.url}/admin/tokens/{revoked.id}/revoke",
                          data={"csrf_token": csrf_from(page)}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302

    assert on_agent.gone.wait(WAIT) and on_supervisor.gone.wait(WAIT)
    assert kept.call("presence", {"status": "busy"}) == {"ok": True, "status": "busy"}
    assert not kept.gone.is_set()
    assert _refused(server.url, "/agent", auth={"token": revoked_secret})


def test_a_password_reset_disconnects_the_users_cookie_sockets_and_the_cookie_stops_working(app, live):
    start, socket = live
    server = start()
    supervisor, admin = factories.user("supervisor"), factories.user("admin")
    cookie = _browser_session(server.url, supervisor).cookies["session"]
    on_agent = socket(server.url, "/agent", cookie=cookie)
    on_supervisor = socket(server.url, "/supervisor", cookie=cookie)
    assert db.session.query(StaffSocket).filter_by(user_id=supervisor.id).count() == 2

    browser = _browser_session(server.url, admin)
    page = browser.get(f"{server.url}/admin/users/{supervisor.id}", timeout=10).text
    answer = browser.post(f"{server.url}/admin/users/{supervisor.id}", data={
        "csrf_token": csrf_from(page), "name": supervisor.name, "role": "supervisor", "service_id": "0",
        "chat_capacity": "3", "active": "y", "new_password": "reset-by-the-admin"}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302

    assert on_agent.gone.wait(WAIT) and on_supervisor.gone.wait(WAIT)
    assert _refused(server.url, "/agent", cookie=cookie) and _refused(server.url, "/supervisor", cookie=cookie)
    stale = requests.get(server.url + "/agent/chats", cookies={"session": cookie}, allow_redirects=False, timeout=10)
    assert stale.status_code == 302 and "/login" in stale.headers["Location"]


def test_signing_out_disconnects_the_console_socket(app, live):
    start, socket = live
    server = start()
    agent = factories.user("agent")
    browser = _browser_session(server.url, agent)
    on_agent = socket(server.url, "/agent", cookie=browser.cookies["session"])
    page = browser.get(server.url + "/agent/chats", timeout=10).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    assert browser.post(server.url + "/logout", data={"csrf_token": token}, allow_redirects=False,
                        timeout=10).status_code == 302
    assert on_agent.gone.wait(WAIT)


def test_every_socket_event_checks_the_session_even_when_no_disconnect_reaches_the_server(app, live):
    """A change made where the server cannot be told (another process, no Redis): the next event is refused."""
    start, socket = live
    server = start()
    supervisor = factories.user("supervisor")
    secret = factories.token(supervisor)
    on_agent = socket(server.url, "/agent", auth={"token": secret})
    on_supervisor = socket(server.url, "/supervisor", auth={"token": secret})
    assert on_agent.call("presence", {"status": "available"})["ok"]
    assert "items" in on_supervisor.call("refresh")

    end_sessions(supervisor)
    db.session.commit()

    assert on_agent.call("presence", {"status": "busy"})["error"]["code"] == "unauthorized"
    assert on_agent.call("mine")["error"]["code"] == "unauthorized"
    assert on_supervisor.call("refresh")["error"]["code"] == "forbidden"


def test_revoking_tokens_from_another_process_disconnects_sockets_through_redis(app, live, database_url, redis_url,
                                                                                runner):
    """`flask crm revoke-tokens` runs in a process of its own: the disconnect travels over the Socket.IO queue."""
    from crm import create_app

    _, socket = live
    server = ServerProcess(database_url, redis_url=redis_url)
    try:
        agent = factories.user("agent")
        secret = factories.token(agent)
        watched = socket(server.url, "/agent", auth={"token": secret})
        assert watched.call("presence", {"status": "busy"})["ok"]
        cli_app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "REDIS_URL": redis_url,
                              "SECRET_KEY": "test-secret"})
        result = cli_app.test_cli_runner().invoke(args=["crm", "revoke-tokens", agent.email])
        assert result.exit_code == 0 and '"revoked": 1' in result.output
        assert watched.gone.wait(WAIT)
    finally:
        server.stop()
        create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})  # the shared socketio without Redis
