"""The database drops every pooled connection (pg_terminate_backend): at most one failed request per
pooled connection, none for requests that are safe to retry, and nothing acknowledged is lost."""
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from sqlalchemy.engine import make_url

from crm.extensions import db
from crm.models import Customer
from tests.faults.conftest import WAIT

APP_NAME = "crm-fault-test"


@pytest.fixture
def pg_only(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("connections terminated by the server are a PostgreSQL matter")
    return database_url


def _terminate(database_url) -> int:
    url = make_url(database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                            (APP_NAME,)).fetchall()
    return len(rows)


def test_terminated_pool_connections_cost_no_safe_request_and_at_most_one_write_each(pg_only, app, council,
                                                                                     processes):
    url = pg_only + ("&" if "?" in pg_only else "?") + f"application_name={APP_NAME}"
    server = processes.server(database_url=url, CRM_DB_POOL_SIZE="5")
    headers = {"Authorization": f"Bearer {council['supervisor_token']}"}

    def read(_=None):
        return requests.get(f"{server.url}/api/v1/cases/{council['case']}", headers=headers, timeout=WAIT).status_code

    def write(n):
        return requests.post(f"{server.url}/api/v1/customers", json={"name": f"Written Resident {n}"},
                             headers=headers, timeout=WAIT).status_code

    with ThreadPoolExecutor(10) as pool:  # open every pooled connection
        assert set(pool.map(read, range(40))) == {200}
    pooled = _terminate(pg_only)
    assert pooled >= 2

    reads = [read() for _ in range(10)]
    assert reads == [200] * 10  # a GET that met a dead connection was retried on a fresh one

    pooled = _terminate(pg_only)
    writes = [write(n) for n in range(10)]
    failed = [s for s in writes if s != 201]
    assert len(failed) <= pooled and set(failed) <= {500, 503}
    db.session.expire_all()
    stored = db.session.query(Customer).filter(Customer.name.like("Written Resident %")).count()
    assert stored == writes.count(201)  # every acknowledged write is there, and only those
