"""The case status lifecycle, enforced here and nowhere else.

    new → open → in_progress ⇄ awaiting_customer → resolved → closed
    resolved → open is a reopen, allowed within CASE_REOPEN_DAYS of the resolution.

An officer may pick a new case straight up (new → in_progress) and resolve from either working
state. Unknown statuses are 422 (bad input); known statuses that the case cannot move to from
where it is are 409 (conflict with its current state).
"""
from datetime import timedelta

from flask import current_app

from ..errors import Conflict, ValidationFailed
from ..models import CASE_STATUSES, Case, utcnow

TRANSITIONS: dict[str, frozenset] = {
    "new": frozenset({"open", "in_progress"}),
    "open": frozenset({"in_progress"}),
    "in_progress": frozenset({"awaiting_customer", "resolved"}),
    "awaiting_customer": frozenset({"in_progress", "resolved"}),
    "resolved": frozenset({"closed", "open"}),
    "closed": frozenset(),
}
OPEN_STATUSES = ("new", "open", "in_progress", "awaiting_customer")
DONE_STATUSES = ("resolved", "closed")
STATUS_LABELS = {
    "new": "New",
    "open": "Open",
    "in_progress": "In progress",
    "awaiting_customer": "Waiting for you",
    "resolved": "Resolved",
    "closed": "Closed",
}
DEFAULT_REOPEN_DAYS = 14


def reopen_window() -> timedelta:
    """Return how long after resolution a case may be reopened."""
    return timedelta(days=current_app.config.get("CASE_REOPEN_DAYS", DEFAULT_REOPEN_DAYS))


def can_reopen(case: Case, now=None) -> bool:
    """Say whether a resolved case is still inside its reopen window."""
    if case.status != "resolved" or case.resolved_at is None:
        return False
    return (now or utcnow()) <= case.resolved_at + reopen_window()


def allowed_next(case: Case) -> list[str]:
    """Return the statuses this case may move to now, in lifecycle order."""
    options = set(TRANSITIONS[case.status])
    if case.status == "resolved" and not can_reopen(case):
        options.discard("open")
    if case.merged_into_id is not None:
        options = set()
    return [s for s in CASE_STATUSES if s in options]


def check_transition(case: Case, to_status: str, now=None) -> None:
    """Refuse a status change the lifecycle does not allow (422 unknown, 409 illegal)."""
    if to_status not in CASE_STATUSES:
        raise ValidationFailed("Unknown status", {"status": [f"must be one of {', '.join(CASE_STATUSES)}"]})
    if case.merged_into_id is not None:
        raise Conflict(f"Case {case.reference} was merged into another case and cannot change",
                       {"status": ["case merged"]}, code="case_merged")
    if to_status == case.status:
        raise Conflict(f"Case {case.reference} is already {to_status}", {"status": [f"already {to_status}"]},
                       code="illegal_transition")
    if to_status not in TRANSITIONS[case.status]:
        allowed = ", ".join(sorted(TRANSITIONS[case.status])) or "nothing (it is final)"
        raise Conflict(f"Case {case.reference} cannot go from {case.status} to {to_status}",
                       {"status": [f"from {case.status} the case can go to {allowed}"]},
                       code="illegal_transition")
    if case.status == "resolved" and to_status == "open" and not can_reopen(case, now):
        days = reopen_window().days
        raise Conflict(f"Case {case.reference} was resolved more than {days} days ago and cannot be reopened",
                       {"status": [f"reopen window of {days} days has passed"]}, code="reopen_window_passed")


def apply_status(case: Case, to_status: str, now=None) -> str:
    """Move the case to `to_status` after checking it, stamping resolved/closed times; return the old one."""
    now = now or utcnow()
    check_transition(case, to_status, now)
    previous = case.status
    case.status = to_status
    if to_status == "resolved":
        case.resolved_at = now
    elif to_status == "closed":
        case.closed_at = now
    elif previous == "resolved":  # a reopen: the earlier resolution no longer stands
        case.resolved_at = None
    if to_status in DONE_STATUSES:
        case.sla_at_risk = False
    return previous
