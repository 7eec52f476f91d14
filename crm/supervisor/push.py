"""Push fresh figures to the /supervisor namespace soon after anything they count has changed.

Two sources say "something changed", both after commit:
- the foundation's signals (a contact recorded, a case event recorded);
- a session hook that notices committed changes to the columns the figures read (conversation
  status, queue and assignee; case status, queue, assignee and due time; presence; chat
  capacity; banners). It also writes the agent-state history row for every presence change,
  whoever changed the presence (the webchat area, the console or a supervisor).
Chat messages alone change no figure, so message_stored is not listened to.

Bursts are coalesced: the first change schedules one push COALESCE_SECONDS later, and changes
arriving meanwhile ride along with it; a steady stream of changes (a busy hour, a mailbox import
committing every half second) pushes at most once every MIN_INTERVAL_SECONDS. So a busy minute
costs a handful of queries, not one per event.
"""
import atexit
import logging
import threading
import time

from blinker import Namespace
from sqlalchemy import event, inspect

from ..extensions import db, socketio
from ..models import (
    AgentPresence, AgentSkill, AgentStateChange, Banner, Case, Contact, Conversation, User, utcnow,
)
from ..signals import case_event_recorded, contact_recorded

log = logging.getLogger(__name__)

NAMESPACE = "/supervisor"
ROOM = "supervisors"
COALESCE_SECONDS = 0.1
MIN_INTERVAL_SECONDS = 1.0

_signals = Namespace()
figures_changed = _signals.signal("supervisor-figures-changed")

# The columns whose change moves a figure; any insert or delete of these models does too.
WATCHED = {
    Conversation: {"status", "queue_id", "assignee_id"},
    Case: {"status", "queue_id", "assignee_id", "sla_due_at", "merged_into_id"},
    Contact: {"outcome", "agent_id", "started_at", "ended_at", "occurred_at"},
    AgentPresence: {"status"},
    User: {"chat_capacity", "active", "role", "name"},
    Banner: {"cleared_at", "expires_at", "message"},
    AgentSkill: set(),  # rows only come and go
}


def _changed(obj, columns) -> bool:
    state = inspect(obj)
    # Only attributes set since load are in committed_state; history (the costly part) says if the value moved.
    moved = columns.intersection(state.committed_state)
    return bool(moved) and any(state.attrs[name].history.has_changes() for name in moved)


def _record_presence(session, presence: AgentPresence) -> None:
    """Add the history row for a presence that is new or whose status changed."""
    session.add(AgentStateChange(user_id=presence.user_id, status=presence.status,
                                 at=presence.since or utcnow()))


def _before_flush(session, flush_context, instances):
    """Note figure-moving changes and record presence history, inside the same transaction."""
    touched = False
    for obj in list(session.new):
        if isinstance(obj, AgentPresence):
            _record_presence(session, obj)
        touched = touched or type(obj) in WATCHED
    for obj in list(session.dirty):
        if isinstance(obj, AgentPresence):
            if _changed(obj, {"status"}):
                touched = True
                if not _changed(obj, {"since"}):
                    # A writer that forgot to move `since`: the change happened now.
                    obj.since = utcnow()
                _record_presence(session, obj)
        elif not touched:  # one figure-moving change is enough; only presences still need a look each
            columns = WATCHED.get(type(obj))
            touched = bool(columns) and _changed(obj, columns)
    touched = touched or any(type(obj) in WATCHED for obj in session.deleted)
    if touched:
        session.info["supervisor_figures_changed"] = True


def _after_commit(session):
    if session.info.pop("supervisor_figures_changed", False):
        figures_changed.send(None)


def _after_rollback(session):
    session.info.pop("supervisor_figures_changed", None)


def install_session_hooks() -> None:
    """Listen to the app-wide session once (create_app runs many times in tests)."""
    target = db.session
    for name, fn in (("before_flush", _before_flush), ("after_commit", _after_commit),
                     ("after_rollback", _after_rollback)):
        if not event.contains(target, name, fn):
            event.listen(target, name, fn)


class Pusher:
    """Coalesce change notices into one `stats` emit per short window, per app."""

    def __init__(self, app):
        self.app = app
        self._lock = threading.Lock()
        self._scheduled = False
        self._last_push = float("-inf")
        self.enabled = True

    def request(self, *_args, **_kwargs) -> None:
        """Ask for a push; does nothing if one is already on its way."""
        if not self.enabled or self._scheduled:  # read without the lock: a push is already on its way
            return
        with self._lock:
            if self._scheduled:
                return
            self._scheduled = True
        socketio.start_background_task(self._push_later)

    def _push_later(self) -> None:
        socketio.sleep(max(COALESCE_SECONDS, self._last_push + MIN_INTERVAL_SECONDS - time.monotonic()))
        with self._lock:
            self._scheduled = False
        self._last_push = time.monotonic()
        try:
            self.push_now()
        except Exception:  # noqa: BLE001 - a failed push must not kill the server's hub
            log.exception("could not push supervisor figures")

    def push_if_due(self) -> None:
        """Push now if a push is waiting: a command that exits (a mailbox import) still shows its last changes."""
        if self.enabled and self._scheduled:
            try:
                self.push_now()
            except Exception:  # noqa: BLE001 - leaving the process must not fail for a push
                log.exception("could not push supervisor figures")

    def push_now(self) -> None:
        """Compute the figures and emit them to every supervisor connected anywhere."""
        from .figures import dashboard_snapshot

        with self.app.app_context():
            try:
                snapshot = dashboard_snapshot()
            finally:
                db.session.remove()
        socketio.emit("stats", snapshot, namespace=NAMESPACE, to=ROOM)


def pusher_for(app) -> Pusher:
    """Return the app's pusher."""
    return app.extensions["supervisor_pusher"]


def _on_change(_sender=None, **_payload) -> None:
    """Receiver of every change signal: ask the current app's pusher for a push."""
    from flask import current_app, has_app_context

    if has_app_context():
        pusher = current_app.extensions.get("supervisor_pusher")
        if pusher is not None:
            pusher.request()


for _signal in (contact_recorded, case_event_recorded, figures_changed):
    _signal.connect(_on_change)


def init_app(app) -> None:
    """Give the app a pusher; the receivers above find it through current_app."""
    pusher = Pusher(app)
    # A test app has no server to push through unless a test says so (SUPERVISOR_PUSH=True).
    pusher.enabled = bool(app.config.get("SUPERVISOR_PUSH", not app.testing))
    app.extensions["supervisor_pusher"] = pusher
    if pusher.enabled:
        atexit.register(pusher.push_if_due)  # a waiting push runs in a daemon thread, which exit would drop
    install_session_hooks()
