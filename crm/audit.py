"""Write audit entries; called by services, committed with the change they record.

A read that is audited (a sensitive case opened, a file downloaded) has no change to commit with:
`init_app` commits it after the request answers successfully, so GET handlers and the helpers that
render pages never commit themselves.
"""
from .extensions import db
from .models import AuditLog

_PENDING = "audit_pending"


def audit(actor, action, target_type, target_id=None, **details):
    """Record that `actor` did `action` to a record; returns the unsaved-yet entry."""
    entry = AuditLog(
        actor_id=getattr(actor, "id", None),
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        details=details,
    )
    db.session.add(entry)
    db.session.info[_PENDING] = True
    return entry


def init_app(app):
    """Commit the audit entries of a request's reads once it has answered successfully."""

    @app.after_request
    def commit_audited_reads(response):
        if db.session.info.pop(_PENDING, False) and response.status_code < 400 and db.session.new:
            db.session.commit()
        return response
