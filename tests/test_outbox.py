"""The outbox: work a change owes is stored with the change, run once, retried, and never lost."""
from datetime import timedelta

import pytest

from crm import outbox
from crm.cases.jobs import notify_owner_job
from crm.cases.service import assign_case
from crm.jobs import huey
from crm.models import OutboxJob, utcnow
from tests import factories


@pytest.fixture
def officer_case(app, make_user):
    highways = factories.service("highways", "Highways", email_address="highways@council.example")
    officer = make_user("service_officer", service_id=highways.id, email="olive@council.example")
    return officer, factories.case(factories.customer())


@pytest.fixture
def queued_jobs(app):
    """Jobs go to the queue instead of running at once, as in production; nothing is handed over here."""
    handed = []
    original_relay = outbox.relay
    huey.immediate = False
    outbox.relay = handed.extend
    yield handed
    outbox.relay = original_relay
    huey.immediate = True


def test_assigning_a_case_writes_the_officers_notification_in_the_same_transaction(officer_case, db, queued_jobs,
                                                                                    smtp_sink):
    officer, case = officer_case
    assign_case(case, officer)
    db.session.commit()
    [row] = db.session.query(OutboxJob).all()
    assert row.task == "crm.cases.jobs.notify_owner_job" and row.args == [case.id, False]
    assert queued_jobs == [row.id]  # handed to the relay after the commit
    assert smtp_sink.messages == []  # not sent yet: the queue (here: nobody) has it


def test_a_rolled_back_change_owes_nothing(officer_case, db, queued_jobs):
    officer, case = officer_case
    assign_case(case, officer)
    db.session.rollback()
    assert db.session.query(OutboxJob).count() == 0 and queued_jobs == []


def test_the_sweep_runs_what_the_relay_never_handed_over(officer_case, db, queued_jobs, smtp_sink):
    officer, case = officer_case
    assign_case(case, officer)
    db.session.commit()
    assert outbox.sweep() == {}  # not due yet: the relay's own job goes first
    db.session.query(OutboxJob).update({"due_at": utcnow() - timedelta(seconds=1)})
    db.session.commit()
    assert outbox.sweep() == {"done": 1}
    [message] = smtp_sink.to("olive@council.example")
    assert message["Subject"].startswith(f"Case {case.reference} assigned to you")
    assert db.session.query(OutboxJob).count() == 0


def test_a_row_handed_over_twice_runs_once(officer_case, db, queued_jobs, smtp_sink):
    officer, case = officer_case
    assign_case(case, officer)
    db.session.commit()
    [outbox_id] = queued_jobs
    assert outbox.run(outbox_id) == "done"
    assert outbox.run(outbox_id) == "skipped"
    assert len(smtp_sink.to("olive@council.example")) == 1


def test_a_row_someone_is_running_is_not_run_again(officer_case, db, queued_jobs, smtp_sink):
    officer, case = officer_case
    assign_case(case, officer)
    db.session.commit()
    db.session.query(OutboxJob).update({"claimed_until": utcnow() + timedelta(minutes=5)})
    db.session.commit()
    assert outbox.run(queued_jobs[0]) == "skipped" and smtp_sink.messages == []


def test_a_failing_job_is_retried_later_then_kept_as_failed(officer_case, db, queued_jobs, app):
    officer, case = officer_case
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=9)  # nothing listens: the relay is down
    app.config["OUTBOX_MAX_ATTEMPTS"] = 2
    assign_case(case, officer)
    db.session.commit()
    [outbox_id] = queued_jobs
    assert outbox.run(outbox_id) == "retrying"
    row = db.session.get(OutboxJob, outbox_id)
    assert row.attempts == 1 and row.failed_at is None and row.claimed_until is None
    assert row.due_at > utcnow() and "Error" in row.last_error
    assert outbox.run(outbox_id) == "failed"
    db.session.refresh(row)
    assert row.failed_at is not None and row.attempts == 2
    assert outbox.run(outbox_id) == "skipped"  # visibly failed, no longer tried


def test_an_unknown_job_is_refused_when_owed(app):
    with pytest.raises(KeyError):
        outbox.enqueue_after_commit("crm.nowhere.no_such_job", 1)


def test_in_process_jobs_run_at_once_after_the_commit(officer_case, db, smtp_sink):
    officer, case = officer_case
    assign_case(case, officer)
    db.session.commit()
    assert len(smtp_sink.to("olive@council.example")) == 1
    assert db.session.query(OutboxJob).count() == 0


def test_owed_work_names_a_declared_job():
    assert notify_owner_job.outbox_name == "crm.cases.jobs.notify_owner_job"
