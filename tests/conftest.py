"""Fixtures: the app on SQLite and (when configured) PostgreSQL, clients, users, sign-in."""
import os
import re
import tempfile

import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from config import TestConfig
from crm import create_app
from crm.extensions import db as _db, limiter

from tests import factories

PG_URL = os.environ.get("CRM_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL")
REQUIRE_SERVICES = os.environ.get("CRM_REQUIRE_SERVICES") == "1"
_SQLITE_FILE = os.path.join(tempfile.mkdtemp(prefix="crm-test-"), "test.sqlite3")


def _service_missing(what: str):
    """Skip, or fail when CI says the services must be there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (CRM_REQUIRE_SERVICES=1) but not reachable", pytrace=False)
    pytest.skip(f"{what} not configured")


def _backend_params():
    return [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")]


_schema_ready = set()


@pytest.fixture(scope="session", params=_backend_params())
def database_url(request):
    """Each database-backed test runs once per backend: SQLite always, PostgreSQL when set."""
    if request.param == "sqlite":
        return f"sqlite:///{_SQLITE_FILE}"
    if not PG_URL:
        _service_missing("PostgreSQL (CRM_TEST_DATABASE_URL)")
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        _service_missing(f"PostgreSQL at {PG_URL} ({exc.__class__.__name__})")
    return PG_URL


@pytest.fixture(scope="session")
def redis_url():
    """The Redis URL for tests that need one; skip or fail when it is not there."""
    if not REDIS_URL:
        _service_missing("Redis (CRM_TEST_REDIS_URL)")
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:  # noqa: BLE001
        _service_missing(f"Redis at {REDIS_URL} ({exc.__class__.__name__})")
    return REDIS_URL


@pytest.fixture(scope="session", autouse=True)
def _no_rate_counts_left_by_earlier_runs():
    """Start with no rate-limit counts in the test Redis: they last up to a day (a resident may be sent
    5 mails an hour, 20 a day), so a test that mails a resident through a real server failed on a
    machine that had run the suite a few times that day."""
    if REDIS_URL:
        import redis

        try:
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter("LIMITS:*"):
                client.delete(key)
        except redis.RedisError:
            pass  # no Redis: the tests that need it skip or fail on their own
    yield


class PerRequestUserClient(FlaskClient):
    """A test client that forgets the cached signed-in user between requests.

    Tests keep one app context open, so flask.g outlives a request; in production each
    request has its own, and Flask-Login loads the user afresh every time.
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            g.pop("_login_user", None)
            g.pop("csrf_token", None)  # Flask-WTF caches the session's token on g as well
        return super().open(*args, **kwargs)


def make_test_app(database_url, **overrides):
    """Build an app on the given database with the schema in place."""
    config = {k: getattr(TestConfig, k) for k in dir(TestConfig) if k.isupper()}
    config.update(SQLALCHEMY_DATABASE_URI=database_url, **overrides)
    app = create_app(config)
    app.test_client_class = PerRequestUserClient
    with app.app_context():
        if database_url not in _schema_ready:
            if _db.engine.dialect.name == "postgresql":
                # Start from nothing: an earlier run may have left another schema behind.
                with _db.engine.begin() as conn:
                    conn.execute(text("DROP SCHEMA public CASCADE"))
                    conn.execute(text("CREATE SCHEMA public"))
            else:
                _db.drop_all()
            _db.create_all()
            _schema_ready.add(database_url)
    return app


def _empty_tables():
    """Remove every row so the next test starts clean (faster than rebuilding the schema)."""
    tables = list(reversed(_db.metadata.sorted_tables))
    if _db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        _db.session.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE"))
    else:
        _db.session.execute(text("PRAGMA foreign_keys=OFF"))
        for table in tables:
            _db.session.execute(table.delete())
    _db.session.commit()


@pytest.fixture
def app(database_url):
    """A fresh app on an empty database of the current backend."""
    app = make_test_app(database_url)
    with app.app_context():
        yield app
        _db.session.remove()
        _empty_tables()
        _db.session.remove()
        _db.engine.dispose()
    limiter.reset()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


PASSWORD = "correct-horse-battery"


@pytest.fixture
def make_user(app):
    """Factory: make_user("agent") gives a committed staff user with the test password."""
    return lambda role="agent", **kw: factories.user(role=role, password=PASSWORD, **kw)


def csrf_from(html: str) -> str:
    """Pull the CSRF token out of a rendered page."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


class AuthActions:
    """Sign in and out through the real form, CSRF included."""

    def __init__(self, client):
        self.client = client

    def login(self, user, password=PASSWORD):
        page = self.client.get("/login")
        return self.client.post("/login", data={
            "email": user.email, "password": password, "csrf_token": csrf_from(page.get_data(as_text=True))})

    def csrf(self) -> str:
        """Return a CSRF token valid for this client's session (for JSON calls with the cookie)."""
        return csrf_from(self.client.get("/console").get_data(as_text=True))

    def logout(self):
        return self.client.post("/logout", data={"csrf_token": self.csrf()})


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def agent(make_user):
    return make_user("agent", email="agent@test.example", name="Ada Agent")


@pytest.fixture
def agent_client(client, auth, agent):
    """A client signed in as an agent."""
    response = auth.login(agent)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def api_token(app):
    """Factory: api_token(user) gives a bearer token header for that user."""
    def make(user):
        return {"Authorization": f"Bearer {factories.token(user)}"}
    return make


@pytest.fixture
def agent_headers(agent, api_token):
    return api_token(agent)


@pytest.fixture
def live_server(app):
    """Serve the app over real HTTP on a free loopback port, in a thread; yields the base URL."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    app.config["CRM_BASE_URL"] = f"http://127.0.0.1:{server.server_port}"  # links in mail point here
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (nothing downloads a browser of its own)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context and page, closed after the test."""
    # bypass_csp: Playwright's own helpers (wait_for_function, axe injection) run as inline script;
    # tests/test_security_browser.py checks our pages under the real policy.
    context = chromium.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


@pytest.fixture
def smtp_sink(app):
    """A real SMTP server on 127.0.0.1 (a free port) that the app's outbound mail goes to."""
    from aiosmtpd.controller import Controller

    from tests.support import SinkHandler, free_port

    handler = SinkHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    try:
        yield handler
    finally:
        controller.stop()
