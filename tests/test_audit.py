"""Audited reads are committed by a request hook: a GET handler records who read what and never commits."""
from sqlalchemy import create_engine, func, select, text

from crm.audit import audit
from crm.extensions import db
from crm.models import AuditLog


def _committed_audit_rows(app) -> int:
    """Count audit rows as another connection sees them (only what was committed)."""
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM audit_log"))
    finally:
        engine.dispose()


def test_an_audited_read_is_committed_after_a_successful_answer_and_not_after_a_refusal(database_url):
    from tests.conftest import make_test_app

    app = make_test_app(database_url)

    @app.get("/test-audited-read/<int:status>")
    def audited_read(status):
        audit(None, "case.view_sensitive", "case", 1)
        return "read", status

    with app.app_context():
        before = _committed_audit_rows(app)
        client = app.test_client()
        assert client.get("/test-audited-read/200").status_code == 200
        assert _committed_audit_rows(app) == before + 1
        assert client.get("/test-audited-read/403").status_code == 403
        db.session.rollback()
        assert _committed_audit_rows(app) == before + 1
        db.session.execute(AuditLog.__table__.delete())
        db.session.commit()
