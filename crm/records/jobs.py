"""The daily retention run on the worker."""
import logging

from ..extensions import db
from ..jobs import crontab, periodic_job
from .retention import run_retention

log = logging.getLogger(__name__)


@periodic_job(crontab(hour="2", minute="30"))
def daily_retention():
    """Apply the retention schedules at 02:30, committing batch by batch."""
    run = run_retention(actor=None, dry_run=False, on_batch=db.session.commit)
    db.session.commit()
    log.info("retention run %s: %s (held: %s)", run.id, run.counts, run.held)
    return run.counts
