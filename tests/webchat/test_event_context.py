"""A socket event after connect runs in a lighter Flask context (no URL matching) that still gives handlers
what a full request context gave them: request.sid, the session and signed-in user taken at connect, the
app context, url_for, teardowns and a database session removed at the end."""
import threading

from flask import current_app, request, session, url_for
from flask.ctx import RequestContext
from flask.globals import request_ctx
from flask_login import current_user
from sqlalchemy import text

from crm.extensions import db, socketio
from crm.realtime import SocketEventContext

NS = "/event-context-test"


def _listen(seen):
    def on_connect(auth=None):
        session["seen_at_connect"] = "yes"
        seen["connect_context"] = type(request_ctx._get_current_object())

    def on_look(data=None):
        db.session.execute(text("SELECT 1"))
        seen.update(context=type(request_ctx._get_current_object()), sid=request.sid, namespace=request.namespace,
                    event=request.event["message"], address=request.remote_addr, app=current_app._get_current_object(),
                    from_connect=session.get("seen_at_connect"), user=current_user.id,
                    link=url_for("auth.login"), db_session=db.session())
        return {"ok": True}

    socketio.on_event("connect", on_connect, namespace=NS)
    socketio.on_event("look", on_look, namespace=NS)


def test_an_event_after_connect_has_the_sid_session_user_and_app_of_its_connection(app, agent_client, agent):
    seen = {}
    _listen(seen)
    sio = socketio.test_client(app, namespace=NS, flask_test_client=agent_client)
    acks = []
    # From a thread with no app context, as in the server, where each event pushes its own.
    event = threading.Thread(target=lambda: acks.append(sio.emit("look", {}, namespace=NS, callback=True)))
    event.start()
    event.join()
    assert acks == [{"ok": True}]
    assert seen["connect_context"] is RequestContext  # connect keeps Flask's whole request context
    assert seen["context"] is SocketEventContext
    assert seen["sid"] and seen["namespace"] == NS and seen["event"] == "look"
    assert seen["address"] == "127.0.0.1"
    assert seen["app"] is app
    assert seen["from_connect"] == "yes"
    assert seen["user"] == agent.id
    assert seen["link"] == "/login"
    assert not seen["db_session"].in_transaction()  # removed when the event's context ended
    sio.disconnect(namespace=NS)


def test_the_event_context_has_everything_a_request_context_has(app):
    environ = app.test_request_context("/socket.io/").request.environ
    assert set(vars(RequestContext(app, environ))) <= set(vars(SocketEventContext(app, environ))) | {"url_adapter"}
