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


def test_an_audited_read_is_committed_after_the_answer_but_a_write_never_with_an_uncommitted_change(database_url):
    from tests.conftest import make_test_app

    app = make_test_app(database_url)

    @app.get("/test-audited-read/<int:status>")
    def audited_read(status):
        audit(None, "case.view_sensitive", "case", 1)
        return "read", status

    @app.post("/test-audited-with-change")
    def audited_with_change():
        from crm.models import Service

        db.session.add(Service(code="uncommitted", name="A change the view did not commit"))
        audit(None, "case.view_sensitive", "case", 1)
        return "read"

    with app.app_context():
        before = _committed_audit_rows(app)
        client = app.test_client()
        assert client.get("/test-audited-read/200").status_code == 200
        assert _committed_audit_rows(app) == before + 1
        assert client.get("/test-audited-read/403").status_code == 403   # the refusal page still read it
        assert _committed_audit_rows(app) == before + 2
        assert client.get("/test-audited-read/500").status_code == 500
        db.session.rollback()
        assert _committed_audit_rows(app) == before + 2
        app.config["WTF_CSRF_ENABLED"] = False
        assert client.post("/test-audited-with-change").status_code == 200
        db.session.rollback()
        assert _committed_audit_rows(app) == before + 2
        db.session.execute(AuditLog.__table__.delete())
        db.session.commit()
