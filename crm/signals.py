"""Signals that carry "something happened" from services to the realtime layer.

Receivers run after the request commits (services send them via `after_commit`), so a
listener never pushes news of a row that was then rolled back.
"""
import logging

from blinker import Namespace
from redis.exceptions import RedisError

from .jobs import queued_together

log = logging.getLogger(__name__)

_signals = Namespace()

contact_recorded = _signals.signal("contact-recorded")
case_event_recorded = _signals.signal("case-event-recorded")
message_stored = _signals.signal("message-stored")
customers_merged = _signals.signal("customers-merged")


def send_after_commit(signal, **payload):
    """Queue a signal to be sent once the current transaction commits (dropped on rollback)."""
    from .extensions import db

    db.session.info.setdefault("pending_signals", []).append((signal, payload))


def install(session_factory):
    """Hook the session so queued signals fire after commit and vanish after rollback."""
    from sqlalchemy import event

    @event.listens_for(session_factory, "after_commit")
    def _fire(session):
        if session.in_nested_transaction():
            return  # a SAVEPOINT released: the real commit is still to come
        pending = session.info.pop("pending_signals", [])
        if not pending:
            return
        try:
            with queued_together():  # the jobs receivers queue (email deliveries) go in one round trip
                for signal, payload in pending:
                    signal.send(None, **payload)
        except RedisError:
            # Committed rows stay owed: the sweeps queue them again (crm/channels/email/delivery.py).
            log.warning("jobs queued after a commit did not reach Redis; the sweeps will queue them", exc_info=True)

    @event.listens_for(session_factory, "after_rollback")
    def _drop(session):
        session.info.pop("pending_signals", None)
