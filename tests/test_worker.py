"""The job worker: a freshly started `python -m crm.worker` knows every job the code can enqueue."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import REDIS_URL
from tests.support import ROOT, WorkerProcess


DECLARED = """
import importlib, json, pkgutil, crm
from crm.jobs import registered_jobs
for module in pkgutil.walk_packages(crm.__path__, "crm."):
    importlib.import_module(module.name)
print(json.dumps(sorted(registered_jobs())))
"""


def jobs_the_code_declares(env) -> set[str]:
    """Import every module of the package in a fresh process, as any code path might, and list its jobs."""
    out = subprocess.run([sys.executable, "-c", DECLARED], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.fixture
def queue_settings():
    """The worker's queue: Redis when the tests have one, else a SQLite queue file of its own."""
    if REDIS_URL:
        return {"REDIS_URL": REDIS_URL}
    return {"CRM_JOBS_FILE": tempfile.mktemp(prefix="crm-jobs-", suffix=".sqlite3")}


def test_a_fresh_worker_registers_every_job_the_code_can_enqueue(app, database_url, queue_settings):
    declared = jobs_the_code_declares(dict(os.environ, DATABASE_URL=database_url, **queue_settings))
    assert "crm.webchat.transcript.send_transcript" in declared
    worker = WorkerProcess(database_url, **queue_settings)
    try:
        running = worker.registered_jobs()
    finally:
        worker.stop()
    assert sorted(declared - running) == []
    assert sorted(running - declared) == []
