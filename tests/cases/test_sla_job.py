"""The periodic SLA sweep: breaches and at-risk cases marked (events once), stale resolutions closed."""
from datetime import timedelta

from crm.cases.jobs import case_sla_sweep, sweep_cases
from crm.cases.service import change_status, post_public_update
from crm.models import Case, CaseEvent, utcnow
from tests import factories


def make_cases(db):
    factories.service()
    customer = factories.customer()
    late, soon, fine, answered = (factories.case(customer, title=t) for t in ("late", "soon", "fine", "answered"))
    now = utcnow()
    late.sla_due_at, late.first_response_due_at = now - timedelta(hours=1), now - timedelta(hours=2)
    soon.sla_due_at = now + timedelta(minutes=30)
    fine.sla_due_at = now + timedelta(days=30)
    answered.first_response_due_at = now - timedelta(hours=1)
    post_public_update(answered, "On it")
    db.session.commit()
    return late, soon, fine, answered


def test_the_sweep_marks_breaches_once_and_flags_cases_at_risk(app, db):
    late, soon, fine, answered = make_cases(db)
    counts = sweep_cases()
    assert counts["breached"] == 1 and counts["first_response_breached"] == 1
    db.session.expire_all()
    assert (late.sla_breached, late.sla_at_risk, late.first_response_breached) == (True, True, True)
    assert (soon.sla_at_risk, soon.sla_breached) == (True, False)
    assert (fine.sla_at_risk, answered.first_response_breached) == (False, False)
    again = sweep_cases()
    assert again["breached"] == 0 and again["first_response_breached"] == 0
    assert db.session.query(CaseEvent).filter_by(case_id=late.id, kind="sla_breached").count() == 1


def test_a_resolved_case_is_never_marked(app, db):
    late, *_ = make_cases(db)
    change_status(late, "in_progress")
    change_status(late, "resolved")
    db.session.commit()
    sweep_cases()
    assert db.session.get(Case, late.id).sla_breached is False


def test_resolutions_past_the_reopen_window_are_closed(app, db):
    late, *_ = make_cases(db)
    change_status(late, "in_progress")
    change_status(late, "resolved")
    late.resolved_at = utcnow() - timedelta(days=60)
    db.session.commit()
    assert sweep_cases()["closed"] == 1
    assert db.session.get(Case, late.id).status == "closed"


def test_the_periodic_job_runs_the_sweep(app, db):
    late, *_ = make_cases(db)
    case_sla_sweep()  # tests run jobs immediately; the worker runs it every five minutes
    db.session.expire_all()
    assert db.session.get(Case, late.id).sla_breached is True


def test_the_cli_runs_the_sweep(app, db, runner):
    make_cases(db)
    result = runner.invoke(args=["crm", "sla-sweep"])
    assert result.exit_code == 0 and '"breached": 1' in result.output.strip().splitlines()[-1]
