"""Staff sessions end when what they were signed in with changes.

Each user has a session stamp (User.session_stamp), written into the session at sign-in as part
of the Flask-Login id ("<id>:<stamp>") and recorded on each staff socket at connect. Signing out,
a new password, deactivation and a change of role or service give the user a new stamp
(User._end_sessions_on_change), so every older session cookie stops working at its next request
and every socket at its next event. After the commit that changes a stamp or revokes a token,
the live sockets it ends are disconnected, in whichever process holds them (through the
Socket.IO message queue when there is one).
"""
import logging
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import delete, event, inspect, or_, select

from ..extensions import db, socketio
from ..models import ApiToken, StaffSocket, User
from ..models.users import new_session_stamp

log = logging.getLogger(__name__)


@dataclass
class SocketIdentity:
    """Who a staff socket signed in as, and with what: checked again on every event."""

    user_id: int
    stamp: str
    token_id: Optional[int] = None


def split_session_id(value) -> tuple[Optional[int], Optional[str]]:
    """Return (user id, stamp) from a Flask-Login id "<id>:<stamp>"; (None, None) when malformed."""
    user_id, _, stamp = str(value or "").partition(":")
    try:
        return int(user_id), stamp or None
    except ValueError:
        return None, None


def end_sessions(user: User) -> None:
    """Sign the user out everywhere: every session cookie and socket made before now stops working."""
    user.session_stamp = new_session_stamp()


def socket_identity(auth) -> Optional[SocketIdentity]:
    """Return who a connecting staff socket is: the token in its auth first, else the session cookie."""
    from flask_login import current_user

    from .accounts import live_token

    secret = auth.get("token") if isinstance(auth, dict) else None
    if secret:
        token = live_token(secret)
        return SocketIdentity(token.user_id, token.user.session_stamp, token.id) if token else None
    if current_user and current_user.is_authenticated:
        return SocketIdentity(current_user.id, current_user.session_stamp)
    return None


def still_valid(identity: Optional[SocketIdentity]) -> Optional[User]:
    """Return the socket's user if their stamp, account and token still hold; None once any has ended."""
    if identity is None:
        return None
    user = db.session.get(User, identity.user_id)
    if user is None or not user.active or user.session_stamp != identity.stamp:
        return None
    if identity.token_id is not None:
        token = db.session.get(ApiToken, identity.token_id)
        if token is None or token.revoked_at is not None:
            return None
    return user


def record_socket(sid: str, namespace: str, identity: SocketIdentity) -> None:
    """Remember a live staff socket so that ending its session or token can close it."""
    db.session.merge(StaffSocket(sid=sid, namespace=namespace, user_id=identity.user_id,
                                 token_id=identity.token_id))


def forget_socket(sid: str) -> None:
    """Forget a staff socket that went away."""
    db.session.execute(delete(StaffSocket).where(StaffSocket.sid == sid))


def _note_ended(session, _context, _instances):
    """Before a flush: note users whose stamp changed and tokens just revoked."""
    ended = session.info.setdefault("ended_sessions", {"users": set(), "tokens": set()})
    for obj in session.dirty:
        if isinstance(obj, User) and inspect(obj).attrs.session_stamp.history.deleted:
            ended["users"].add(obj.id)
        elif isinstance(obj, ApiToken) and obj.revoked_at is not None \
                and inspect(obj).attrs.revoked_at.history.has_changes():
            ended["tokens"].add(obj.id)


def _close_ended(session):
    """After the commit: close the sockets of what it ended."""
    if session.in_nested_transaction():
        return
    ended = session.info.pop("ended_sessions", None)
    if ended and (ended["users"] or ended["tokens"]):
        try:
            close_sockets(ended["users"], ended["tokens"])
        except Exception:  # noqa: BLE001 - every event re-checks the stamp anyway
            log.exception("could not close ended staff sockets")


def _forget_ended(session):
    session.info.pop("ended_sessions", None)


def install(session_factory) -> None:
    """Close the sockets of users whose stamp changed, and of revoked tokens, once the change commits (hooks once)."""
    for name, hook in (("before_flush", _note_ended), ("after_commit", _close_ended),
                       ("after_rollback", _forget_ended)):
        if not event.contains(session_factory, name, hook):
            event.listen(session_factory, name, hook)


def close_sockets(user_ids, token_ids) -> int:
    """Disconnect (in any process) the staff sockets of these users and tokens; return how many."""
    condition = or_(StaffSocket.user_id.in_(list(user_ids)), StaffSocket.token_id.in_(list(token_ids)))
    # A connection of its own: the session that committed cannot run SQL inside its after_commit.
    with db.engine.begin() as conn:
        rows = conn.execute(select(StaffSocket.sid, StaffSocket.namespace).where(condition)).all()
        conn.execute(delete(StaffSocket).where(condition))
    server = socketio.server
    if server is None:
        return 0
    local = [(sid, ns) for sid, ns in rows if server.manager.is_connected(sid, ns)]
    if local:  # later, in a green thread of its own: disconnect handlers commit, which cannot happen here
        socketio.start_background_task(_disconnect, server, local)
    _disconnect(server, [row for row in rows if tuple(row) not in local])  # other processes, via the queue
    from eventlet import patcher

    if not patcher.is_monkey_patched("thread"):
        socketio.sleep(0.05)  # a CLI or worker process: let the queue's publisher task run before we exit
    return len(rows)


def _disconnect(server, rows) -> None:
    for sid, namespace in rows:
        try:
            server.disconnect(sid, namespace=namespace)
        except Exception:  # noqa: BLE001 - one gone socket must not keep the others open
            log.warning("could not disconnect %s on %s", sid, namespace, exc_info=True)
