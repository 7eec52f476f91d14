"""Webchat fixtures: real `python wsgi.py` server processes and real python-socketio clients."""
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
import socketio

ROOT = Path(__file__).resolve().parents[2]
WAIT = 15  # seconds any single expected event may take before the test fails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real server process: python wsgi.py on its own port."""

    def __init__(self, database_url, redis_url=None, port=None, **settings):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, DATABASE_URL=database_url, PORT=str(self.port), HOST="127.0.0.1",
                        SECRET_KEY="test-secret", PYTHONUNBUFFERED="1")
        self.env.pop("REDIS_URL", None)
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        defaults = {"WEBCHAT_SWEEP_SECONDS": "0.2", "WEBCHAT_GRACE_SECONDS": "60", "WEBCHAT_HEARTBEAT_SECONDS": "2"}
        defaults.update({k: str(v) for k, v in settings.items()})
        self.env.update(defaults)
        self.proc = None
        self.start()

    def start(self):
        # A file, not a pipe: nobody reads the log while it runs, and a full pipe would stall the server.
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read().decode()[-3000:]}")
            try:
                if requests.get(self.url + "/chat", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self):
        """Kill -9: no clean shutdown, as when a machine dies."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


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
        self.sio.disconnect()


@pytest.fixture
def server_factory(database_url):
    """Start servers on the test database; all are stopped at the end."""
    started = []

    def start(**kw):
        server = Server(kw.pop("database_url", database_url), **kw)
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
