"""Write audit entries; called by services, committed with the change they record."""
from .extensions import db
from .models import AuditLog


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
    return entry
