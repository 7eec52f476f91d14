"""Human words for stored codes (statuses, channels, outcomes, categories), in one place.

Templates use the `label` filter (`case.status|label('case_status')`) and `when` for dates, so
staff never read `in_progress` or `face_to_face`, and every date carries its year.
"""
from flask import g
from sqlalchemy import select

from .models.types import utcnow

LABELS = {
    "case_status": {
        "new": "New", "open": "Open", "in_progress": "In progress", "awaiting_customer": "Awaiting the resident",
        "resolved": "Resolved", "closed": "Closed",
    },
    "channel": {
        "phone": "Phone", "email": "Email", "webchat": "Webchat", "web_form": "Web form", "open311": "Open311 app",
        "face_to_face": "Face to face", "letter": "Letter",
    },
    "outcome": {
        "resolved_first_time": "Resolved at first contact", "case_raised": "Case raised", "signposted": "Signposted",
        "transferred": "Transferred", "abandoned": "Abandoned / call dropped",
        "pending": "Pending (follow-up needed)",
    },
    "priority": {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"},
    "direction": {"inbound": "Inbound", "outbound": "Outbound"},
    "conversation_status": {
        "queued": "Queued", "open": "Open", "assigned": "Assigned", "waiting_customer": "Waiting on the resident",
        "resolved": "Resolved", "ended": "Ended", "closed": "Closed",
    },
    "event": {
        "created": "Raised", "routed": "Routed", "rerouted": "Re-routed", "assigned": "Assigned",
        "status_changed": "Status changed", "note": "Internal note", "public_update": "Public update",
        "contact_attached": "Contact added", "merged": "Merged", "merged_in": "Duplicate merged in",
        "split": "Split", "split_from": "Split from", "reopened": "Reopened", "sla_breached": "Resolution target missed",
        "first_response_breached": "First-response target missed",
    },
}


def _category_names() -> dict:
    """Return category code -> name, read once per request."""
    names = g.get("_category_names")
    if names is None:
        from .extensions import db  # noqa: PLC0415  (labels are imported by models' users early)
        from .models import Category  # noqa: PLC0415

        names = dict(db.session.execute(select(Category.code, Category.name)).all())
        g._category_names = names
    return names


def label(value, kind: str = None) -> str:
    """Return the human label of a stored code; unknown codes read as words, never as snake_case."""
    if value is None or value == "":
        return ""
    value = str(value)
    if kind == "category":
        found = _category_names().get(value)
        if found:
            return found
    elif kind is not None:
        found = LABELS.get(kind, {}).get(value)
        if found:
            return found
    else:
        for table in LABELS.values():
            if value in table:
                return table[value]
    return value.replace("_", " ").capitalize()


def when(value, with_time: bool = True) -> str:
    """Format a stored time as the council's local date (always with the year) and time."""
    if value is None:
        return "–"
    from .portal import council_time  # noqa: PLC0415

    return council_time(value, "%-d %b %Y %H:%M" if with_time else "%-d %b %Y")


def age(value, now=None) -> str:
    """Say how long ago a stored time was, in the largest sensible unit (minutes, hours, days)."""
    if value is None:
        return ""
    seconds = max(0, int(((now or utcnow()) - value).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


def init_app(app) -> None:
    """Teach Jinja the label, when and age filters."""
    app.jinja_env.filters["label"] = label
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["age"] = age
