"""Socket.IO namespace /webchat: residents start, resume, send, type, end, rate, leave a message.

Every handler is thin: check the connection, validate, call the service, commit, then emit
(crm.webchat.guard turns refusals into error acks).
"""
import threading
from dataclasses import dataclass
from typing import Optional

from flask import current_app, request
from flask_socketio import join_room, leave_room

from ..errors import DomainError, ValidationFailed
from ..extensions import db, socketio
from . import chats, hours, messages, push, rules, writer
from .guard import check_rate, client_ip, new_bucket, payload_object, safe_handler
from .limits import TokenBucket
from .push import AGENT_NS, RESIDENT_NS, conv_room, user_room
# At import, not in the handler: the worker knows a job only if its module is imported at start-up.
from .transcript import send_transcript


@dataclass
class ResidentConnection:
    ip: str
    bucket: TokenBucket
    visitor_id: Optional[str] = None
    conversation_id: Optional[int] = None
    typing: Optional[bool] = None


residents: dict[str, ResidentConnection] = {}
_start_slots: Optional[threading.Semaphore] = None  # green under the server's monkey patching


def start_slot() -> threading.Semaphore:
    """Return the semaphore that bounds how many `start`s this process runs at once.

    A start is several round trips; a burst of hundreds would otherwise hold every pooled
    connection and queue the chats already running (one round trip per message) behind it.
    Starts beyond the bound wait their turn here, holding nothing.
    """
    global _start_slots
    if _start_slots is None:
        _start_slots = threading.Semaphore(current_app.config["WEBCHAT_START_CONCURRENCY"])
    return _start_slots


@socketio.on("connect", namespace=RESIDENT_NS)
def resident_connect(auth=None):
    """A resident's browser connects; it is anonymous until it starts or resumes a chat."""
    push.ensure_sweeper(current_app._get_current_object())
    visitor = auth.get("visitor_id") if isinstance(auth, dict) else None
    residents[request.sid] = ResidentConnection(
        ip=client_ip(), bucket=new_bucket(), visitor_id=visitor if isinstance(visitor, str) else None)


@socketio.on("disconnect", namespace=RESIDENT_NS)
def resident_disconnect(*_):
    """Forget the connection; the chat carries on and the resident may resume it."""
    residents.pop(request.sid, None)


def resident_conn() -> ResidentConnection:
    conn = residents.get(request.sid)
    if conn is None:  # connected before a restart of this handler's state
        conn = residents[request.sid] = ResidentConnection(ip=client_ip(), bucket=new_bucket())
    return conn


def bound_conversation(conn: ResidentConnection):
    if conn.conversation_id is None:
        raise DomainError("Start or resume a chat first", code="no_chat", status=409)
    return conn.conversation_id


def bind(conn: ResidentConnection, conversation_id: int) -> None:
    if conn.conversation_id and conn.conversation_id != conversation_id:
        leave_room(conv_room(conn.conversation_id))
    conn.conversation_id = conversation_id
    join_room(conv_room(conversation_id))


@socketio.on("start", namespace=RESIDENT_NS)
@safe_handler
def resident_start(data=None):
    """Resident sends the pre-chat form; the chat is queued (or, out of hours, left as a message)."""
    data = payload_object(data)
    conn = resident_conn()
    check_rate(conn.bucket)
    visitor = data.get("visitor_id") or conn.visitor_id
    # Stored by this process's starter with the other starts of the moment, before the ack.
    # The socket is in the chat's room before the commit; the assigner then gives the chat out and
    # sends the resident a `status` (assigned, or place in the queue).
    stored = push.submit_start(chats.StartRequest(data, visitor, conn.ip, request.sid))
    if stored is None:  # closed: leave a message, the old way
        with start_slot():
            return _start(data, conn)
    if conn.conversation_id and conn.conversation_id != stored["conversation_id"]:
        leave_room(conv_room(conn.conversation_id))
    conn.conversation_id = stored["conversation_id"]
    return dict(stored, state="queued")


def _start(data: dict, conn: ResidentConnection) -> dict:
    """Queue the chat (or leave the message out of hours) and ack; the assigner does the rest."""
    open_now = hours.is_open()
    first = data.get("message")
    if not open_now and not (isinstance(first, str) and first.strip()):
        opens = hours.next_opening()
        raise DomainError("Webchat is closed; leave a message instead", code="closed",
                          fields={"opens_at": [opens.isoformat()] if opens else []}, status=409)
    visitor = data.get("visitor_id") or conn.visitor_id
    conversation = chats.start_chat(data, visitor, conn.ip)
    # Read before the commit: afterwards each attribute read would re-load the row.
    ack = {"conversation_id": conversation.id, "token": conversation.token}
    db.session.commit()
    bind(conn, ack["conversation_id"])
    if not open_now:
        ack["reference"] = chats.leave_message(conversation, first, data.get("email"))
        db.session.commit()
        ack["state"] = "offline"
        return ack
    if isinstance(first, str) and first.strip():
        body = rules.clean_text(first, "message", current_app.config["WEBCHAT_MAX_MESSAGE_CHARS"])
        chat_id = ack["conversation_id"]
        messages.store_message(chat_id, "resident", body, client_id=f"start-{chat_id}")
        db.session.commit()
    # The assigner gives it out and sends the resident a `status` (assigned, or place in the queue).
    push.chat_arrived(ack["conversation_id"])
    ack["state"] = "queued"
    return ack


@socketio.on("resume", namespace=RESIDENT_NS)
@safe_handler
def resident_resume(data=None):
    """Resident reconnects with their token; gets every message after after_seq, in order."""
    data = payload_object(data)
    conn = resident_conn()
    conversation = rules.conversation_by_token(data.get("token"))
    after = rules.clean_int(data.get("after_seq", 0), "after_seq")
    bind(conn, conversation.id)
    status = push.status_of(conversation)
    status["last_seq"] = conversation.last_seq  # internal notes leave gaps the resident never sees
    return {"status": status["state"], "state": status, "conversation_id": conversation.id,
            "messages": [messages.serialise_message(m) for m in messages.messages_after(conversation.id, after)]}


@socketio.on("message", namespace=RESIDENT_NS)
@safe_handler
def resident_message(data=None):
    """Resident sends a message; it is stored (once per client_id) before the ack, then relayed."""
    data = payload_object(data)
    conn = resident_conn()
    conversation_id = bound_conversation(conn)
    client_id = rules.clean_client_id(data.get("client_id"))
    body = rules.clean_text(data.get("body"), "body", current_app.config["WEBCHAT_MAX_MESSAGE_CHARS"])
    check_rate(conn.bucket)
    # Committed by this process's writer with the other messages of the moment, before the ack.
    message, holder_id = writer.store(
        messages.MessageRequest(conversation_id, "resident", body, client_id, rules.LIVE_STATES),
        alone=lambda: messages.store_once(conversation_id, "resident", body, client_id, states=rules.LIVE_STATES))
    # Re-sent duplicates are relayed again too: the first relay may have died with a process.
    push.deliver(message, conversation_id, holder_id, skip_sid=request.sid)
    return {"id": message["id"], "seq": message["seq"]}


@socketio.on("typing", namespace=RESIDENT_NS)
@safe_handler
def resident_typing(data=None):
    """Resident starts or stops typing; the agent holding the chat sees it."""
    data = payload_object(data)
    conn = resident_conn()
    conversation_id = bound_conversation(conn)
    typing = bool(data.get("typing"))
    if typing == conn.typing:
        return {"ok": True}
    conn.typing = typing
    conversation = rules.chat_or_404(conversation_id)
    if conversation.assignee_id:
        socketio.emit("typing", {"conversation_id": conversation_id, "typing": typing, "who": "resident"},
                      namespace=AGENT_NS, to=user_room(conversation.assignee_id))
    return {"ok": True}


@socketio.on("end", namespace=RESIDENT_NS)
@safe_handler
def resident_end(data=None):
    """Resident ends the chat."""
    conn = resident_conn()
    conversation = rules.chat_or_404(bound_conversation(conn))
    holder = conversation.assignee_id
    chats.end_by_resident(conversation)
    db.session.commit()
    # The agent keeps an ended chat until they close it: no place is freed yet.
    push.after_chat_changed(conversation, wrote=1, holder_id=holder, agent_freed=False)
    if holder:
        socketio.emit("ended", {"conversation_id": conversation.id}, namespace=AGENT_NS, to=user_room(holder))
    return {"ok": True, "state": "ended"}


@socketio.on("leave_message", namespace=RESIDENT_NS)
@safe_handler
def resident_leave_message(data=None):
    """Resident, offered it because no agent came, leaves a message; it becomes a case or an email thread."""
    data = payload_object(data)
    conn = resident_conn()
    check_rate(conn.bucket)
    conversation = rules.chat_or_404(bound_conversation(conn))
    reference = chats.leave_message(conversation, data.get("body"), data.get("email"))
    db.session.commit()
    push.mark_queue_changed()
    push.push_status(conversation)
    return {"ok": True, "reference": reference}


@socketio.on("rate", namespace=RESIDENT_NS)
@safe_handler
def resident_rate(data=None):
    """Resident answers the satisfaction question (1-5) at the end."""
    data = payload_object(data)
    conversation = rules.chat_or_404(bound_conversation(resident_conn()))
    chats.rate(conversation, data.get("rating"))
    db.session.commit()
    return {"ok": True}


@socketio.on("transcript", namespace=RESIDENT_NS)
@safe_handler
def resident_transcript(data=None):
    """Resident asks for the transcript by email."""
    from ..outbox import enqueue_after_commit

    data = payload_object(data)
    conn = resident_conn()
    check_rate(conn.bucket)
    conversation = rules.chat_or_404(bound_conversation(conn))
    email = rules.clean_text(data.get("email"), "email", 254, required=False) or conversation.chat.email
    if not email:
        raise ValidationFailed("Give an email address", {"email": ["required"]})
    from ..security import resident_mail_allowed
    from .transcript import claim_transcript

    address = claim_transcript(conversation, email)  # the start's address (or a verified one), once per chat
    if not resident_mail_allowed(address, "transcript"):
        raise DomainError("Too many emails have been sent to that address; try again later",
                          code="rate_limited", status=429)
    enqueue_after_commit(send_transcript, conversation.id, address)
    db.session.commit()
    return {"ok": True}
