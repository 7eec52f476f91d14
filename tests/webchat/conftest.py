"""Webchat fixtures: real `python wsgi.py` server processes and real python-socketio clients."""
import queue
import time

import pytest
import socketio

from tests.support import ServerProcess

WAIT = 15  # seconds any single expected event may take before the test fails
# Short sweeps and heartbeats so queue changes show within a test's patience.
WEBCHAT_TIMINGS = {"WEBCHAT_SWEEP_SECONDS": "0.2", "WEBCHAT_GRACE_SECONDS": "60", "WEBCHAT_HEARTBEAT_SECONDS": "2"}


class Client:
    """A python-socketio client on one namespace that records every event it receives."""

    def __init__(self, url, namespace, auth=None, headers=None):
        self.namespace = namespace
        self.events = queue.Queue()
        self.sio = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
        self.sio.on("*", self._record, namespace=namespace)
        self.sio.on("connect", lambda: self.events.put(("__connect__", None)), namespace=namespace)
        self.sio.connect(url, namespaces=[namespace], auth=auth, headers=headers or {},
                         transports=["websocket"], wait_timeout=10)

    def _record(self, event, data=None):
        self.events.put((event, data))

    def call(self, event, data=None):
        """Emit and return the ack."""
        return self.sio.call(event, data, namespace=self.namespace, timeout=WAIT)

    def expect(self, event, where=lambda data: True):
        """Return the next `event` whose payload satisfies `where` (earlier others are dropped)."""
        deadline = time.monotonic() + WAIT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event!r} event arrived")
            try:
                name, data = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if name == event and where(data):
                return data

    def drain(self):
        """Return every event received so far."""
        got = []
        while not self.events.empty():
            got.append(self.events.get_nowait())
        return got

    def close(self):
        # shutdown, not disconnect: a client whose server died would otherwise retry for the rest of the run.
        self.sio.shutdown()


@pytest.fixture
def server_factory(database_url):
    """Start servers on the test database; all are stopped at the end."""
    started = []

    def start(**kw):
        kw = {**WEBCHAT_TIMINGS, **kw}
        server = ServerProcess(kw.pop("database_url", database_url), **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def clients():
    """Open clients; all are closed at the end."""
    opened = []

    def open_(url, namespace, **kw):
        client = Client(url, namespace, **kw)
        opened.append(client)
        return client

    yield open_
    for client in opened:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - already gone with its server
            pass


@pytest.fixture
def server(app, server_factory):
    """One server on the current backend (the app fixture has made the schema)."""
    return server_factory()


def agent_with_token(make_user, api_token, capacity=3, role="agent", name=None):
    """Make a staff user with a chat capacity and return (user, token)."""
    from crm.extensions import db

    user = make_user(role, name=name) if name else make_user(role)
    user.chat_capacity = capacity
    db.session.commit()
    return user, api_token(user)["Authorization"][7:]
