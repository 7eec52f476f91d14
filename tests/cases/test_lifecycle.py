"""The lifecycle table: every move from every status, allowed or refused, and the reopen window."""
from datetime import timedelta

import pytest

from crm.cases import lifecycle
from crm.cases.service import change_status, reopen_case
from crm.errors import Conflict, ValidationFailed
from crm.models import CASE_STATUSES, CaseEvent, utcnow
from tests import factories

ALLOWED = {
    ("new", "open"), ("new", "in_progress"),
    ("open", "in_progress"),
    ("in_progress", "awaiting_customer"), ("in_progress", "resolved"),
    ("awaiting_customer", "in_progress"), ("awaiting_customer", "resolved"),
    ("resolved", "closed"), ("resolved", "open"),
}
# How to bring a new case to each status through legal moves only.
PATH_TO = {
    "new": [],
    "open": ["open"],
    "in_progress": ["in_progress"],
    "awaiting_customer": ["in_progress", "awaiting_customer"],
    "resolved": ["in_progress", "resolved"],
    "closed": ["in_progress", "resolved", "closed"],
}


@pytest.fixture
def new_case(app, make_user):
    factories.service()
    officer = make_user("supervisor")
    return factories.case(factories.customer()), officer


def test_the_table_in_code_is_the_documented_one():
    table = {(a, b) for a, targets in lifecycle.TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


@pytest.mark.parametrize("from_status", CASE_STATUSES)
@pytest.mark.parametrize("to_status", CASE_STATUSES)
def test_every_move_is_allowed_or_refused_as_the_table_says(new_case, db, from_status, to_status):
    case, officer = new_case
    for step in PATH_TO[from_status]:
        change_status(case, step, officer)
    db.session.commit()
    assert case.status == from_status
    events_before = db.session.query(CaseEvent).filter_by(case_id=case.id).count()
    if (from_status, to_status) in ALLOWED:
        event = change_status(case, to_status, officer, reason="testing")
        db.session.commit()
        assert case.status == to_status
        assert (event.from_value, event.to_value, event.actor_id) == (from_status, to_status, officer.id)
        assert event.kind == ("reopened" if from_status == "resolved" and to_status == "open" else "status_changed")
    else:
        with pytest.raises(Conflict) as refused:
            change_status(case, to_status, officer)
        assert refused.value.status == 409
        db.session.rollback()
        assert case.status == from_status
        assert db.session.query(CaseEvent).filter_by(case_id=case.id).count() == events_before


def test_an_unknown_status_is_bad_input(new_case):
    case, officer = new_case
    with pytest.raises(ValidationFailed) as refused:
        change_status(case, "done", officer)
    assert refused.value.status == 422


def test_resolving_and_closing_stamp_their_times_and_a_reopen_clears_the_resolution(new_case, db):
    case, officer = new_case
    change_status(case, "in_progress", officer)
    change_status(case, "resolved", officer)
    assert case.resolved_at is not None
    reopen_case(case, None, "It is not fixed")
    db.session.commit()
    assert case.status == "open" and case.resolved_at is None
    change_status(case, "in_progress", officer)
    change_status(case, "resolved", officer)
    change_status(case, "closed", officer)
    assert case.closed_at is not None
    assert lifecycle.allowed_next(case) == []


def test_a_reopen_after_the_window_is_refused(new_case, db, app):
    case, officer = new_case
    change_status(case, "in_progress", officer)
    change_status(case, "resolved", officer)
    case.resolved_at = utcnow() - timedelta(days=app.config.get("CASE_REOPEN_DAYS", 14), hours=1)
    db.session.commit()
    assert "open" not in lifecycle.allowed_next(case)
    with pytest.raises(Conflict) as refused:
        reopen_case(case)
    assert refused.value.code == "reopen_window_passed"


def test_the_reopen_window_is_configurable(new_case, db, app):
    case, officer = new_case
    change_status(case, "in_progress", officer)
    change_status(case, "resolved", officer)
    case.resolved_at = utcnow() - timedelta(days=20)
    app.config["CASE_REOPEN_DAYS"] = 30
    try:
        reopen_case(case)
    finally:
        app.config.pop("CASE_REOPEN_DAYS")
    assert case.status == "open"
