"""The /supervisor Socket.IO namespace: live figures for supervisors and admins.

Connect with the staff session cookie or `auth={"token": TOKEN}`. The server pushes `stats`
(the dashboard snapshot; its `items` are the GET /api/v1/queues figures) after every change
and every SUPERVISOR_REFRESH_SECONDS while someone watches (waits and SLA clocks move with
time alone). The client may emit `refresh` to get the snapshot as the ack. The role is checked
again on every event, so a supervisor demoted mid-shift stops receiving at the next event.
"""
import logging

from flask import current_app, request
from flask_socketio import join_room, leave_room

from ..auth.roles import SUPERVISORS
from ..auth.sessions import SocketIdentity, forget_socket, record_socket, socket_identity, still_valid
from ..extensions import db, socketio
from ..models import User
from .figures import dashboard_snapshot
from .push import NAMESPACE, ROOM, pusher_for

log = logging.getLogger(__name__)

# sid -> who each socket connected to this process signed in as (session stamp or token).
_watchers: dict[str, SocketIdentity] = {}
_ticker = {"running": False}


def _allowed(user: User | None) -> bool:
    return bool(user and user.active and user.has_role(*SUPERVISORS))


def _watcher() -> User | None:
    """Re-read the socket's user and check the role; a socket that lost it stops hearing pushes
    at once and is disconnected just after its refusal is acknowledged."""
    sid = request.sid
    user = still_valid(_watchers.get(sid))  # a session ended or token revoked counts as signed out
    if not _allowed(user):
        leave_room(ROOM)
        _watchers.pop(sid, None)
        socketio.start_background_task(_disconnect_soon, sid)
        return None
    return user


def _disconnect_soon(sid: str) -> None:
    socketio.sleep(0.5)
    socketio.server.disconnect(sid, namespace=NAMESPACE)


def _tick(app) -> None:
    """Push on a timer while anyone in this process watches, so clocks move without events."""
    interval = float(app.config["SUPERVISOR_REFRESH_SECONDS"])
    try:
        while _watchers:
            socketio.sleep(interval)
            if _watchers:
                pusher_for(app).push_now()
    except Exception:  # noqa: BLE001 - the ticker must never take the hub down
        log.exception("supervisor refresh ticker stopped")
    finally:
        _ticker["running"] = False


@socketio.on("connect", namespace=NAMESPACE)
def connect(auth=None):
    """A supervisor's dashboard connects; it joins the room and gets the figures at once."""
    identity = socket_identity(auth)
    user = still_valid(identity)
    if not _allowed(user):
        db.session.remove()
        raise ConnectionRefusedError("supervisors and admins only")
    record_socket(request.sid, NAMESPACE, identity)
    db.session.commit()
    _watchers[request.sid] = identity
    join_room(ROOM)
    socketio.emit("stats", dashboard_snapshot(), namespace=NAMESPACE, to=request.sid)
    db.session.remove()
    if not _ticker["running"]:
        _ticker["running"] = True
        socketio.start_background_task(_tick, current_app._get_current_object())


@socketio.on("disconnect", namespace=NAMESPACE)
def on_disconnect(*_reason):
    """Forget the socket."""
    _watchers.pop(request.sid, None)
    try:
        forget_socket(request.sid)
        db.session.commit()
    except Exception:  # noqa: BLE001 - a leftover row only means a later no-op disconnect
        log.warning("could not forget supervisor socket", exc_info=True)
    finally:
        db.session.remove()


@socketio.on("refresh", namespace=NAMESPACE)
def refresh(_payload=None):
    """The dashboard asks for the figures now (after a reconnect, say); ack with the snapshot."""
    try:
        if _watcher() is None:
            return {"error": {"code": "forbidden", "message": "supervisors and admins only"}}
        return dashboard_snapshot()
    finally:
        db.session.remove()
