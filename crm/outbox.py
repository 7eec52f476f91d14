"""The outbox: work a change owes (notifications, mail) is written in the change's own transaction.

`enqueue_after_commit(job, *args)` adds a row to the session. After the commit a relay hands
each new row to the job queue (Huey) off the request's path, so a queue that is down or slow
never turns a committed change into a reported failure. The worker sweeps what the relay could
not hand over, or whose queued job was lost, every OUTBOX_SWEEP_SECONDS and runs it itself.
A runner claims a row before running it and deletes it when done, so a row handed over twice
runs once; a job that raises is tried again with back-off and after OUTBOX_MAX_ATTEMPTS stays
in the table as failed, with its error, for staff to see.
"""
import logging
import threading
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, event, inspect, or_, select, update

from .extensions import db
from .jobs import huey, job, job_function, job_name
from .models import OutboxJob, utcnow

log = logging.getLogger(__name__)

# The relay's own job normally runs first; the sweep takes a row only this long after its commit.
RELAY_GRACE_SECONDS = 10
# A runner holds a row this long; one killed mid-job frees it when the claim runs out.
CLAIM_SECONDS = 300
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 1800
DEFAULT_MAX_ATTEMPTS = 8


def enqueue_after_commit(task, *args) -> OutboxJob:
    """Owe `task(*args)` (a @job) once this transaction commits; nothing is owed if it rolls back."""
    now = utcnow()
    grace = current_app.config.get("OUTBOX_RELAY_GRACE_SECONDS", RELAY_GRACE_SECONDS)
    row = OutboxJob(task=job_name(task), args=list(args), created_at=now,
                    due_at=now + timedelta(seconds=grace), attempts=0)
    job_function(row.task)  # an unknown job fails here, in the change, not later in the worker
    db.session.add(row)
    db.session.info.setdefault("outbox_new", []).append(row)
    return row


def install(session_factory) -> None:
    """Hook the session (once): after a commit the new rows go to the relay; after a rollback they are forgotten."""
    for name, listener in (("after_commit", _relay_committed), ("after_rollback", _forget_rolled_back)):
        if not event.contains(session_factory, name, listener):
            event.listen(session_factory, name, listener)


def _relay_committed(session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the real commit is still to come
    rows = session.info.pop("outbox_new", None)
    if rows:
        # The identity key is kept after the commit expired the rows: no SQL here.
        ids = [inspect(row).identity[0] for row in rows if inspect(row).identity]
        if ids:
            relay(ids)


def _forget_rolled_back(session) -> None:
    session.info.pop("outbox_new", None)


def relay(ids) -> None:
    """Hand committed rows to the job queue; in-process jobs (tests) run them at once."""
    if huey.immediate:
        # Its own app context, so its own session: this runs inside the committing session's hook.
        with current_app._get_current_object().app_context():
            for outbox_id in ids:
                run(outbox_id)
        return
    threading.Thread(target=_hand_over, args=(list(ids),), name="outbox-relay").start()


def _hand_over(ids) -> None:
    for outbox_id in ids:
        try:
            outbox_job(outbox_id)
        except Exception as error:  # noqa: BLE001 - the row is committed; the sweep runs it
            log.warning("outbox row %s not queued (%s); the worker's sweep will run it", outbox_id, error)
            return


@job()
def outbox_job(outbox_id: int) -> str:
    """Background job: run one owed outbox row."""
    return run(outbox_id)


def _retry_delay(attempts: int) -> float:
    return min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1))


def run(outbox_id: int) -> str:
    """Claim a row, run its job, delete it; say "done", "skipped" (gone or held), "retrying" or "failed". Commits."""
    now = utcnow()
    claimed = db.session.execute(
        update(OutboxJob)
        .where(OutboxJob.id == outbox_id, OutboxJob.failed_at.is_(None),
               or_(OutboxJob.claimed_until.is_(None), OutboxJob.claimed_until < now))
        .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), attempts=OutboxJob.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if not claimed:
        return "skipped"
    row = db.session.get(OutboxJob, outbox_id)
    task, args, attempts = row.task, list(row.args or []), row.attempts
    try:
        job_function(task)(*args)
        db.session.execute(delete(OutboxJob).where(OutboxJob.id == outbox_id))
        db.session.commit()
        return "done"
    except Exception as error:  # noqa: BLE001 - recorded on the row and tried again later
        db.session.rollback()
        limit = current_app.config.get("OUTBOX_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
        failed = attempts >= limit
        later = utcnow()
        values = {"claimed_until": None, "last_error": f"{type(error).__name__}: {error}"[:2000],
                  "due_at": later + timedelta(seconds=_retry_delay(attempts))}
        if failed:
            values["failed_at"] = later
        db.session.execute(update(OutboxJob).where(OutboxJob.id == outbox_id).values(**values)
                           .execution_options(synchronize_session=False))
        db.session.commit()
        (log.error if failed else log.warning)("outbox job %s (%s) attempt %s failed: %s", outbox_id, task,
                                                attempts, error)
        return "failed" if failed else "retrying"


def sweep(limit: int = 200) -> dict:
    """Run the rows that are due (not handed over, lost, or waiting to retry); return counts. Commits."""
    now = utcnow()
    ids = db.session.scalars(
        select(OutboxJob.id)
        .where(OutboxJob.failed_at.is_(None), OutboxJob.due_at <= now,
               or_(OutboxJob.claimed_until.is_(None), OutboxJob.claimed_until < now))
        .order_by(OutboxJob.due_at).limit(limit)).all()
    db.session.commit()
    counts = {}
    for outbox_id in ids:
        outcome = run(outbox_id)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def sweep_forever(app, interval: float) -> None:
    """The worker's sweeper: run due rows every `interval` seconds, whatever the job queue is doing."""
    while True:
        time.sleep(interval)
        with app.app_context():
            try:
                counts = sweep()
                if counts:
                    log.info("outbox sweep: %s", counts)
            except Exception:  # noqa: BLE001 - the sweeper must outlive a database outage
                db.session.rollback()
                log.exception("outbox sweep failed")
            finally:
                db.session.remove()
