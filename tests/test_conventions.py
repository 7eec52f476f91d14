"""The conventions a newcomer expects: commands work as typed, database URLs as hosts give them,
and the OpenAPI document describes the error body clients really get."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from crm import areas, create_app, database_url

ROOT = Path(__file__).resolve().parent.parent


def _clean_env(**extra):
    """The environment a person has: none of our special variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "FLASK_", "DATABASE_URL"))}
    env.update(extra)
    return env


@pytest.mark.parametrize("given, expected", [
    ("postgres://u:p@db.example:5432/crm", "postgresql+psycopg://u:p@db.example:5432/crm"),
    ("postgresql://u@localhost/crm?sslmode=require", "postgresql+psycopg://u@localhost/crm?sslmode=require"),
    ("postgresql+psycopg://u@localhost/crm", "postgresql+psycopg://u@localhost/crm"),
    ("sqlite:///instance/crm.sqlite3", "sqlite:///instance/crm.sqlite3"),
])
def test_database_urls_in_the_forms_hosts_give_are_accepted(given, expected):
    assert database_url(given) == expected


def test_flask_crm_works_from_the_project_root_without_extra_variables():
    path = os.path.join(tempfile.mkdtemp(), "cli.sqlite3")
    env = _clean_env(DATABASE_URL=f"sqlite:///{path}", SECRET_KEY="convention-test-key")
    flask = [sys.executable, "-m", "flask"]
    upgrade = subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    made = subprocess.run([*flask, "crm", "create-user", "cli@council.example", "--role", "agent", "--name", "Cli",
                           "--password", "long-enough-pass"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().splitlines()[-1].startswith("created agent cli@council.example (id ")


def test_the_crm_console_command_runs_from_any_directory():
    script = shutil.which("crm", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail("the crm console script is not installed: make deps runs pip install -e .")
    path = os.path.join(tempfile.mkdtemp(), "script.sqlite3")
    env = _clean_env(DATABASE_URL=f"sqlite:///{path}", SECRET_KEY="convention-test-key")
    upgrade = subprocess.run([script, "db", "upgrade"], cwd=tempfile.gettempdir(), env=env, capture_output=True,
                             text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    token = subprocess.run([script, "create-token", "nobody@council.example"], cwd=tempfile.gettempdir(), env=env,
                           capture_output=True, text=True, timeout=120)
    assert token.returncode == 1 and "No user nobody@council.example" in token.stderr
    assert "Traceback" not in token.stderr


def test_the_openapi_document_describes_the_error_body_we_send():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True})
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    detail = spec["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"code", "message", "fields"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue  # path-level parameters
            for status, response in operation.get("responses", {}).items():
                if status.startswith("4"):
                    ref = response.get("$ref") or response["content"]["application/json"]["schema"]["$ref"]
                    resolved = spec["components"]["responses"].get(ref.rsplit("/", 1)[-1], {})
                    schema = resolved.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", ref)
                    assert schema.endswith("/Error"), (method, path, status, schema)


def test_every_area_registers_through_one_function():
    for area in areas():
        assert callable(getattr(area, "register", None)), area.__name__
