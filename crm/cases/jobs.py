"""Background work of the cases area: the SLA sweep the worker runs every few minutes."""
import logging

from ..extensions import db
from ..jobs import crontab, periodic_job
from .service import close_resolved_after_window, mark_sla_states

log = logging.getLogger(__name__)


def sweep_cases() -> dict:
    """Mark breaches and at-risk cases, close resolutions past their reopen window; commit."""
    counts = mark_sla_states()
    counts["closed"] = close_resolved_after_window()
    db.session.commit()
    if any(counts.values()):
        log.info("case SLA sweep: %s", counts)
    return counts


@periodic_job(crontab(minute="*/5"))
def case_sla_sweep():
    """Run the SLA sweep on the worker's schedule."""
    return sweep_cases()
