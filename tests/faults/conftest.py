"""Fault fixtures: a private Redis we may stop, pause and restart; the worker; an SMTP sink; a seeded council."""
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import redis
import requests
from aiosmtpd.controller import Controller

from crm.extensions import db
from crm.models import FormDefinition
from tests import factories
from tests.conftest import PASSWORD, csrf_from
from tests.support import ROOT, SinkHandler, ServerProcess, free_port

WAIT = 30  # seconds any one expected outcome may take before the test fails


class PrivateRedis:
    """A redis-server of our own on a spare loopback port (never the shared one): stop, start, pause, resume."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="crm-redis-")
        self.proc = None
        self.start()

    def url(self, database=0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def start(self):
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self):
        """Kill it: every queued job and connection is gone, as when Redis dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    yield server
    server.stop()


@pytest.fixture
def sink():
    """A real SMTP server on loopback that the server processes and the worker send to."""
    handler = SinkHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


class WorkerProcess:
    """python -m crm.worker (Huey consumer plus the outbox sweeper) against the test database."""

    def __init__(self, env):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "crm.worker"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def processes(database_url, sink):
    """Start servers and workers sharing one environment; all are stopped at the end."""
    started = []

    def settings(redis_url):
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port), "OUTBOX_SWEEP_SECONDS": "1",
                "OUTBOX_RELAY_GRACE_SECONDS": "2", "WEBCHAT_SWEEP_SECONDS": "0.2", "WEBCHAT_HEARTBEAT_SECONDS": "1",
                **({"REDIS_URL": redis_url} if redis_url else {})}

    class Start:
        def server(self, redis_url=None, **kw):
            server = ServerProcess(kw.pop("database_url", database_url), **{**settings(redis_url), **kw})
            started.append(server)
            return server

        def worker(self, redis_url=None):
            env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="test-secret", PYTHONUNBUFFERED="1",
                       **settings(redis_url))
            env.pop("REDIS_URL", None) if not redis_url else None
            worker = WorkerProcess(env)
            started.append(worker)
            return worker

    yield Start()
    for process in started:
        process.stop()


@pytest.fixture
def council(app, make_user):
    """A service with a published form, an officer, a chat agent and a resident's case; committed."""
    highways = factories.service(email_address="highways@council.example")
    form = FormDefinition(slug="report-a-pothole", title="Report a pothole", service_id=highways.id,
                          category_code="pothole", description="Tell us about a pothole.",
                          fields=[{"name": "location", "label": "Where is it?", "type": "text", "required": True,
                                   "location": True}])
    db.session.add(form)
    officer = make_user("service_officer", service_id=highways.id, email="olive@council.example", name="Olive Officer")
    supervisor = make_user("supervisor", email="sam@council.example", name="Sam Supervisor")
    agent = make_user("agent", email="ada@council.example", name="Ada Agent")
    agent.chat_capacity = 20
    case = factories.case(factories.customer("Pat Resident", email="pat@example.org"))
    db.session.commit()
    return {"officer_id": officer.id, "officer": officer.email, "supervisor": supervisor.email,
            "agent": agent.email, "agent_token": factories.token(agent), "supervisor_token": factories.token(supervisor),
            "case": case.reference}


def sign_in(url, email) -> int:
    """Sign a member of staff in through the real form; return the status of the post."""
    session = requests.Session()
    page = session.get(url + "/login", timeout=WAIT)
    answer = session.post(url + "/login", data={"email": email, "password": PASSWORD,
                                               "csrf_token": csrf_from(page.text)}, allow_redirects=False, timeout=WAIT)
    return answer.status_code


def send_form(url, location) -> int:
    """Post the pothole form as a resident; return the status of the post."""
    session = requests.Session()
    page = session.get(url + "/forms/report-a-pothole", timeout=WAIT)
    answer = session.post(url + "/forms/report-a-pothole", data={
        "location": location, "name": "Rita Resident", "email": "rita@example.org", "phone": "",
        "csrf_token": csrf_from(page.text)}, allow_redirects=False, timeout=WAIT)
    return answer.status_code


def track(url, reference, contact) -> int:
    """Look a case up on /track; return the status of the post."""
    session = requests.Session()
    page = session.get(url + "/track", timeout=WAIT)
    answer = session.post(url + "/track", data={"reference": reference, "contact": contact,
                                               "csrf_token": csrf_from(page.text)}, allow_redirects=False, timeout=WAIT)
    return answer.status_code


def wait_for(predicate, what: str):
    """Poll until predicate() is true (WAIT seconds at most)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")
