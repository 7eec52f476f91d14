"""The /supervisor namespace against a real server: pushes after changes, auth, role checks."""
import queue
import time

import pytest
import requests
import socketio

from crm.extensions import db
from tests import factories

WAIT = 15  # the longest any expected event may take before the test fails (not a latency check)


class SupervisorClient:
    """A python-socketio client on /supervisor that records every `stats` it receives."""

    def __init__(self, url, auth=None, headers=None):
        self.stats = queue.Queue()
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("stats", self.stats.put, namespace="/supervisor")
        self.sio.connect(url, namespaces=["/supervisor"], auth=auth, headers=headers or {},
                         transports=["websocket"], wait_timeout=10)

    def next_stats(self, where=lambda s: True):
        """Return the next pushed snapshot that satisfies `where`."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                snapshot = self.stats.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if where(snapshot):
                return snapshot
        raise AssertionError("no matching stats push arrived")

    def close(self):
        self.sio.disconnect()


@pytest.fixture
def supervisor_socket(live_crm, supervisor):
    client = SupervisorClient(live_crm.url, auth={"token": factories.token(supervisor)})
    yield client
    client.close()


def _agent(snapshot, user_id):
    return next(a for a in snapshot["agents"] if a["id"] == user_id)


def test_a_logged_call_is_pushed_to_the_supervisor(app, agent, agent_headers, live_crm, supervisor_socket):
    first = supervisor_socket.next_stats()  # sent on connect
    assert _agent(first, agent.id)["contacts_today"] == 0
    response = requests.post(f"{live_crm.url}/api/v1/contacts", headers=agent_headers, timeout=10, json={
        "channel": "phone", "caller": {"name": "Pat Caller", "phone": "01228 000000"},
        "category": "pothole", "outcome": "resolved_first_time"})
    assert response.status_code == 201, response.text
    pushed = supervisor_socket.next_stats(lambda s: _agent(s, agent.id)["contacts_today"] == 1)
    # What was pushed is what the API says.
    api = requests.get(f"{live_crm.url}/api/v1/queues", headers=agent_headers, timeout=10).json()
    assert pushed["items"] == api["items"]


def test_a_steady_stream_of_changes_is_pushed_about_once_a_second_ending_with_the_last(
        app, agent, agent_headers, live_crm, supervisor_socket):
    supervisor_socket.next_stats()  # sent on connect
    started = time.monotonic()
    for n in range(8):  # a call logged every 0.2 s for 1.6 s
        response = requests.post(f"{live_crm.url}/api/v1/contacts", headers=agent_headers, timeout=10, json={
            "channel": "phone", "caller": {"name": f"Caller {n}", "phone": f"01228 00000{n}"},
            "category": "pothole", "outcome": "resolved_first_time"})
        assert response.status_code == 201, response.text
        time.sleep(max(0.0, started + 0.2 * (n + 1) - time.monotonic()))
    counts = []
    while not counts or counts[-1] < 8:
        counts.append(_agent(supervisor_socket.next_stats(), agent.id)["contacts_today"])
    # One push per change would be 8; about one a second over ~2 s is 3 (4 if a push falls on a boundary).
    assert len(counts) <= 4, counts
    assert counts == sorted(counts) and counts[-1] == 8


def test_a_capacity_change_is_pushed(app, agent, supervisor_headers, live_crm, supervisor_socket):
    supervisor_socket.next_stats()
    response = requests.patch(f"{live_crm.url}/api/v1/supervisor/agents/{agent.id}", json={"chat_capacity": 7},
                              headers=supervisor_headers, timeout=10)
    assert response.status_code == 200
    pushed = supervisor_socket.next_stats(lambda s: _agent(s, agent.id)["chat_capacity"] == 7)
    assert _agent(pushed, agent.id)["presence"] == "offline"


def test_an_agent_coming_online_on_webchat_is_pushed(app, agent, live_crm, supervisor_socket):
    supervisor_socket.next_stats()
    agent_socket = socketio.Client(reconnection=False)
    agent_socket.connect(live_crm.url, namespaces=["/agent"], auth={"token": factories.token(agent)},
                         transports=["websocket"], wait_timeout=10)
    try:
        pushed = supervisor_socket.next_stats(lambda s: _agent(s, agent.id)["presence"] == "available")
        assert _agent(pushed, agent.id)["chats_in_hand"] == 0
    finally:
        agent_socket.disconnect()
    supervisor_socket.next_stats(lambda s: _agent(s, agent.id)["presence"] == "offline")
    db.session.expire_all()
    from sqlalchemy import select

    from crm.models import AgentStateChange

    states = db.session.scalars(select(AgentStateChange.status).where(AgentStateChange.user_id == agent.id)
                                .order_by(AgentStateChange.id)).all()
    assert states == ["available", "offline"]


def test_refresh_acks_with_the_snapshot(app, live_crm, supervisor_socket):
    supervisor_socket.next_stats()
    snapshot = supervisor_socket.sio.call("refresh", {}, namespace="/supervisor", timeout=WAIT)
    assert {"items", "channels", "agents", "banners", "generated_at"} <= set(snapshot)


def test_session_cookie_of_a_supervisor_connects(app, live_crm, supervisor):
    session = requests.Session()
    page = session.get(f"{live_crm.url}/login", timeout=10).text
    from tests.conftest import PASSWORD, csrf_from

    session.post(f"{live_crm.url}/login", timeout=10, allow_redirects=False,
                 data={"email": supervisor.email, "password": PASSWORD, "csrf_token": csrf_from(page)})
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    # Session protection is "strong": the socket must come from the same browser (user agent).
    client = SupervisorClient(live_crm.url, headers={"Cookie": cookie, "User-Agent": session.headers["User-Agent"]})
    try:
        assert "items" in client.next_stats()
    finally:
        client.close()


@pytest.mark.parametrize("role", ["agent", "service_officer"])
def test_other_staff_and_strangers_are_refused(app, live_crm, make_user, role):
    user = make_user(role)
    for auth in ({"token": factories.token(user)}, {"token": "not-a-token"}, None):
        with pytest.raises(socketio.exceptions.ConnectionError):
            SupervisorClient(live_crm.url, auth=auth)


def test_a_demoted_supervisor_is_refused_at_the_next_event(app, live_crm, supervisor):
    client = SupervisorClient(live_crm.url, auth={"token": factories.token(supervisor)})
    try:
        client.next_stats()
        supervisor.role = "agent"
        db.session.commit()
        answer = client.sio.call("refresh", {}, namespace="/supervisor", timeout=WAIT)
        assert answer["error"]["code"] == "forbidden"
    finally:
        client.close()
