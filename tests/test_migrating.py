"""Flask-Migrate is loaded only when migrations are run, and then behaves as if set up eagerly."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str, url: str) -> str:
    env = dict(os.environ, CRM_NO_MONKEY_PATCH="1", DATABASE_URL=url)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]


def test_building_the_app_imports_neither_alembic_nor_flask_migrate():
    url = f"sqlite:///{tempfile.mkdtemp()}/app.sqlite3"
    loaded = _run("import sys, wsgi; print(sorted(m for m in ('alembic', 'flask_migrate') if m in sys.modules))", url)
    assert loaded == "[]"


def test_flask_db_commands_load_flask_migrate_and_migrate_the_database():
    url = f"sqlite:///{tempfile.mkdtemp()}/app.sqlite3"
    env = dict(os.environ, CRM_NO_MONKEY_PATCH="1", DATABASE_URL=url)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "db"]
    upgraded = subprocess.run(flask + ["upgrade"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert upgraded.returncode == 0, upgraded.stderr
    current = subprocess.run(flask + ["--directory", str(ROOT / "migrations"), "current"], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    assert current.returncode == 0 and "(head)" in current.stdout
    listed = subprocess.run(flask + ["--help"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert "upgrade" in listed.stdout and "downgrade" in listed.stdout


def test_the_extension_config_is_flask_migrates_own_once_read(app):
    from flask_migrate import _MigrateConfig

    from crm.extensions import db

    config = app.extensions["migrate"]
    assert config.db is db and config.configure_args["render_as_batch"] is True
    assert isinstance(app.extensions["migrate"], _MigrateConfig)  # the stand-in has stepped aside
    assert app.extensions["migrate"].directory.endswith("migrations")
