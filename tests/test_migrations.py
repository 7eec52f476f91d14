"""Migrations build the whole schema from empty, and it matches the models."""
import os
import subprocess
import sys
import tempfile

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, inspect, text

from crm import create_app
from crm.extensions import db
from crm.models.knowledge import include_in_schema_comparison

OPTS = {"compare_type": True, "include_object": include_in_schema_comparison}


def _migrated_app(url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    return app


def _meaningful(diffs):
    # SQLite cannot tell a server-side type apart in some cases; keep everything else.
    return [d for d in diffs if not (isinstance(d, tuple) and d[0] == "modify_type")]


def test_migrations_from_empty_match_the_models_on_sqlite():
    path = os.path.join(tempfile.mkdtemp(), "migrated.sqlite3")
    app = _migrated_app(f"sqlite:///{path}")
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts=OPTS), db.metadata)
        assert _meaningful(diffs) == []
        assert "contacts" in inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_migrations_from_empty_match_the_models_on_postgresql(database_url):
    if not database_url.startswith("postgresql"):
        return
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
        conn.execute(text("CREATE SCHEMA migration_check"))
    engine.dispose()
    url = database_url + ("&" if "?" in database_url else "?") + "options=-csearch_path%3Dmigration_check"
    app = _migrated_app(url)
    try:
        with app.app_context():
            upgrade()
            with db.engine.connect() as conn:
                diffs = compare_metadata(MigrationContext.configure(conn, opts=OPTS), db.metadata)
            assert diffs == []
            db.engine.dispose()
    finally:
        engine = create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
        engine.dispose()


def test_flask_db_upgrade_runs_from_the_command_line():
    path = os.path.join(tempfile.mkdtemp(), "cli.sqlite3")
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{path}", CRM_NO_MONKEY_PATCH="1")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    engine = create_engine(f"sqlite:///{path}")
    assert "customers" in inspect(engine).get_table_names()
    engine.dispose()
