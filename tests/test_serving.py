"""The server process itself: it serves on its port alone, and says in one line why it cannot start."""
import os
import subprocess
import sys

import pytest
import requests

from tests.support import ROOT, ServerProcess


def _second_server(database_url, **settings):
    environment = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="test-secret", **settings)
    environment.pop("CRM_NO_MONKEY_PATCH", None)
    return subprocess.run([sys.executable, "wsgi.py"], cwd=ROOT, env=environment, capture_output=True, text=True,
                          timeout=60)


def test_a_second_server_on_a_port_in_use_stops_in_one_line_and_the_first_keeps_serving(database_url):
    first = ServerProcess(database_url)
    try:
        second = _second_server(database_url, HOST="127.0.0.1", PORT=str(first.port))
        assert second.returncode == 1
        assert second.stderr.strip().splitlines()[-1] == \
            f"crm: cannot listen on 127.0.0.1:{first.port}: Address already in use"
        assert "Traceback" not in second.stderr
        assert requests.get(first.url + "/login", timeout=5).status_code == 200
    finally:
        first.stop()


@pytest.mark.parametrize("host", ["192.0.2.1"])  # TEST-NET-1: an address no machine here has
def test_a_host_not_on_this_machine_stops_the_start_in_one_line(database_url, host):
    started = _second_server(database_url, HOST=host, PORT="0")
    assert started.returncode == 1
    assert started.stderr.strip().splitlines()[-1] == f"crm: cannot listen on {host}:0: Cannot assign requested address"
    assert "Traceback" not in started.stderr
