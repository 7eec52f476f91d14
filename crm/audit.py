"""Write audit entries; called by services, committed with the change they record.

A read that is audited (a sensitive case opened, a file downloaded) has no change to commit with:
`init_app` commits it after the request has answered, so GET handlers and the helpers that render
pages never commit themselves.
"""
from flask import request

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
    """Commit the audit entries of a request's reads once it has answered (a refusal's page too)."""

    @app.after_request
    def commit_audited_reads(response):
        session = db.session
        if not session.info.pop(_PENDING, False) or response.status_code >= 500:
            return response
        # A read (GET) commits as its handler used to; after a write, only when nothing but the read's
        # entries is pending (anything else belongs to a change its view chose not to commit).
        only_entries = all(isinstance(o, AuditLog) for o in session.new) and not session.dirty and not session.deleted
        if request.method in ("GET", "HEAD") or only_entries:
            session.commit()
        return response
