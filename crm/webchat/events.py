"""Socket.IO namespaces /webchat (residents) and /agent (staff); /supervisor is crm.supervisor.events.

Every handler is thin: check who is asking, validate, call the service, commit, then emit.
Any refusal comes back as an ack `{"error": {"code", "message", "fields"}}`; an unexpected
failure is logged and acked as `server_error`, so no handler ever dies on bad input.
"""
import logging
import threading
from dataclasses import dataclass, field
from functools import wraps
from typing import Optional

from flask import current_app, request
from flask_socketio import join_room, leave_room

from .. import visibility
from ..auth.sessions import SocketIdentity, forget_socket, record_socket, socket_identity, still_valid
from ..auth.roles import SUPERVISORS
from ..errors import DomainError, Forbidden, ValidationFailed
from ..extensions import db, socketio
from ..models import User
from . import push, service
from .limits import BucketsByKey, TokenBucket
from .push import AGENT_NS, RESIDENT_NS, conv_room, user_room
# At import, not in the handler: the worker knows a job only if its module is imported at start-up.
from .transcript import send_transcript

log = logging.getLogger("crm.webchat")



@dataclass
class ResidentConnection:
    ip: str
    bucket: TokenBucket
    visitor_id: Optional[str] = None
    conversation_id: Optional[int] = None
    typing: Optional[bool] = None


@dataclass
class StaffConnection:
    user_id: int
    bucket: TokenBucket
    typing: dict = field(default_factory=dict)
    identity: Optional[SocketIdentity] = None  # the session stamp or token it connected with


residents: dict[str, ResidentConnection] = {}
staff: dict[str, StaffConnection] = {}
_ip_buckets: Optional[BucketsByKey] = None
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


def error_ack(code: str, message: str, fields=None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def safe_handler(fn):
    """Turn refusals into error acks and unexpected failures into a logged server_error ack."""
    @wraps(fn)
    def wrapped(*args):
        try:
            return fn(*args)
        except DomainError as exc:
            db.session.rollback()
            return error_ack(exc.code, exc.message, exc.fields)
        except Exception:  # noqa: BLE001 - one bad event must not kill the connection
            db.session.rollback()
            log.exception("webchat handler %s failed", fn.__name__)
            return error_ack("server_error", "Something went wrong; please try again")
    return wrapped


def payload_object(data) -> dict:
    """Return the event payload as a dict or refuse."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationFailed("The payload must be an object", {"payload": ["must be a JSON object"]})
    return data


def client_ip() -> str:
    return (request.remote_addr or "unknown")[:45]


def ip_allows() -> bool:
    """Spend one token from the client address's bucket."""
    global _ip_buckets
    if _ip_buckets is None:
        _ip_buckets = BucketsByKey(current_app.config["WEBCHAT_IP_RATE"], current_app.config["WEBCHAT_IP_BURST"])
    return _ip_buckets.take(client_ip())


def check_rate(bucket: TokenBucket) -> None:
    """Refuse when the connection or its address sends faster than allowed."""
    if not bucket.take() or not ip_allows():
        raise DomainError("You are sending messages too quickly; please wait a moment",
                          code="rate_limited", status=429)


def new_bucket() -> TokenBucket:
    return TokenBucket(current_app.config["WEBCHAT_CONNECTION_RATE"], current_app.config["WEBCHAT_CONNECTION_BURST"])


# ---- /webchat: residents ------------------------------------------------------------------------

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
    stored = push.submit_start(service.StartRequest(data, visitor, conn.ip, request.sid))
    if stored is None:  # closed: leave a message, the old way
        with start_slot():
            return _start(data, conn)
    if conn.conversation_id and conn.conversation_id != stored["conversation_id"]:
        leave_room(conv_room(conn.conversation_id))
    conn.conversation_id = stored["conversation_id"]
    return dict(stored, state="queued")


def _start(data: dict, conn: ResidentConnection) -> dict:
    """Queue the chat (or leave the message out of hours) and ack; the assigner does the rest."""
    open_now = service.is_open()
    first = data.get("message")
    if not open_now and not (isinstance(first, str) and first.strip()):
        opens = service.next_opening()
        raise DomainError("Webchat is closed; leave a message instead", code="closed",
                          fields={"opens_at": [opens.isoformat()] if opens else []}, status=409)
    visitor = data.get("visitor_id") or conn.visitor_id
    conversation = service.start_chat(data, visitor, conn.ip)
    # Read before the commit: afterwards each attribute read would re-load the row.
    ack = {"conversation_id": conversation.id, "token": conversation.token}
    db.session.commit()
    bind(conn, ack["conversation_id"])
    if not open_now:
        ack["reference"] = service.leave_message(conversation, first, data.get("email"))
        db.session.commit()
        ack["state"] = "offline"
        return ack
    if isinstance(first, str) and first.strip():
        body = service.clean_text(first, "message", current_app.config["WEBCHAT_MAX_MESSAGE_CHARS"])
        chat_id = ack["conversation_id"]
        service.store_message(chat_id, "resident", body, client_id=f"start-{chat_id}")
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
    conversation = service.conversation_by_token(data.get("token"))
    after = service.clean_int(data.get("after_seq", 0), "after_seq")
    bind(conn, conversation.id)
    status = push.status_of(conversation)
    status["last_seq"] = conversation.last_seq  # internal notes leave gaps the resident never sees
    return {"status": status["state"], "state": status, "conversation_id": conversation.id,
            "messages": [service.serialise_message(m) for m in service.messages_after(conversation.id, after)]}


@socketio.on("message", namespace=RESIDENT_NS)
@safe_handler
def resident_message(data=None):
    """Resident sends a message; it is stored (once per client_id) before the ack, then relayed."""
    data = payload_object(data)
    conn = resident_conn()
    conversation_id = bound_conversation(conn)
    client_id = service.clean_client_id(data.get("client_id"))
    body = service.clean_text(data.get("body"), "body", current_app.config["WEBCHAT_MAX_MESSAGE_CHARS"])
    check_rate(conn.bucket)
    stored = service.store_in_one_statement(conversation_id, "resident", body, client_id, service.LIVE_STATES)
    if stored is None:  # SQLite, a re-sent client id, or the chat ended: the ORM path sorts it out
        stored = service.store_once(conversation_id, "resident", body, client_id, states=service.LIVE_STATES)
    message, holder_id = stored
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
    conversation = service.chat_or_404(conversation_id)
    if conversation.assignee_id:
        socketio.emit("typing", {"conversation_id": conversation_id, "typing": typing, "who": "resident"},
                      namespace=AGENT_NS, to=user_room(conversation.assignee_id))
    return {"ok": True}


@socketio.on("end", namespace=RESIDENT_NS)
@safe_handler
def resident_end(data=None):
    """Resident ends the chat."""
    conn = resident_conn()
    conversation = service.chat_or_404(bound_conversation(conn))
    holder = conversation.assignee_id
    service.end_by_resident(conversation)
    db.session.commit()
    push.mark_queue_changed()
    for message in service.messages_after(conversation.id, conversation.last_seq - 1, include_internal=False):
        push.deliver(message, conversation.id, holder)
    push.push_status(conversation)
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
    conversation = service.chat_or_404(bound_conversation(conn))
    reference = service.leave_message(conversation, data.get("body"), data.get("email"))
    db.session.commit()
    push.mark_queue_changed()
    push.push_status(conversation)
    return {"ok": True, "reference": reference}


@socketio.on("rate", namespace=RESIDENT_NS)
@safe_handler
def resident_rate(data=None):
    """Resident answers the satisfaction question (1-5) at the end."""
    data = payload_object(data)
    conversation = service.chat_or_404(bound_conversation(resident_conn()))
    service.rate(conversation, data.get("rating"))
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
    conversation = service.chat_or_404(bound_conversation(conn))
    email = service.clean_text(data.get("email"), "email", 254, required=False) or conversation.chat.email
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


# ---- /agent: staff -------------------------------------------------------------------------

def current_staff(roles=service.CHAT_ROLES) -> User:
    """Return the connection's staff member, re-read now: session, token, role and active on every event."""
    conn = staff.get(request.sid)
    user = still_valid(conn.identity) if conn else None
    if user is None:
        raise DomainError("Your session has ended; sign in again", code="unauthorized", status=401)
    if not user.has_role(*roles):
        raise DomainError("Your role may not do that", code="forbidden", status=403)
    return user


@socketio.on("connect", namespace=AGENT_NS)
def agent_connect(auth=None):
    """An agent's console connects (session cookie or auth token); they see the queue and their chats."""
    identity = socket_identity(auth)
    user = still_valid(identity)
    if user is None or not user.has_role(*service.CHAT_ROLES):
        db.session.rollback()
        raise ConnectionRefusedError("forbidden" if user else "unauthorized")
    push.ensure_sweeper(current_app._get_current_object())
    staff[request.sid] = StaffConnection(user_id=user.id, bucket=new_bucket(), identity=identity)
    push.local_agent_sids[request.sid] = user.id
    service.add_agent_socket(request.sid, user, push.SERVER_ID)
    record_socket(request.sid, AGENT_NS, identity)
    db.session.commit()  # the token's last_used_at too
    join_room(user_room(user.id))
    join_room("agents")
    presence = _presence_of(user)
    items = push.queue_items()
    db.session.commit()
    socketio.emit("queue", {"items": items}, namespace=AGENT_NS, to=request.sid)
    socketio.emit("presence", {"status": presence}, namespace=AGENT_NS, to=request.sid)
    push.request_assignment()


def _presence_of(user: User) -> str:
    from ..models import AgentPresence

    presence = db.session.get(AgentPresence, user.id)
    return presence.status if presence else "available"


@socketio.on("disconnect", namespace=AGENT_NS)
def agent_disconnect(*_):
    """The console went away: after the grace period without it, the agent's chats are requeued."""
    staff.pop(request.sid, None)
    push.local_agent_sids.pop(request.sid, None)
    try:
        service.remove_agent_socket(request.sid)
        forget_socket(request.sid)
        db.session.commit()
    except Exception:  # noqa: BLE001 - the sweeper expires the socket row if this fails
        db.session.rollback()
        log.exception("could not record agent disconnect")


@socketio.on("presence", namespace=AGENT_NS)
@safe_handler
def agent_presence(data=None):
    """Agent sets presence: available (takes chats), busy (keeps, takes none), away (requeued after grace)."""
    data = payload_object(data)
    user = current_staff()
    status = service.clean_presence(data.get("status"))
    service.set_presence(user, status)
    db.session.commit()
    if status == "available":
        push.request_assignment()
    return {"ok": True, "status": status}


@socketio.on("mine", namespace=AGENT_NS)
@safe_handler
def agent_mine(data=None):
    """Agent's console asks for the chats it holds (after a reconnect), each with its messages."""
    user = current_staff()
    from sqlalchemy import select

    from ..models import Conversation

    chats = db.session.scalars(select(Conversation).where(
        Conversation.channel == service.CHANNEL, Conversation.assignee_id == user.id,
        Conversation.status.in_(service.HELD_STATES)).order_by(Conversation.id)).all()
    return {"items": [dict(push.chat_summary(c), messages=[
        service.serialise_message(m) for m in service.messages_after(c.id, 0, include_internal=True)])
        for c in chats]}


@socketio.on("accept", namespace=AGENT_NS)
@safe_handler
def agent_accept(data=None):
    """Agent picks a waiting chat (or re-opens one they hold); gets its messages."""
    data = payload_object(data)
    user = current_staff()
    waiting = service.chat_or_404(data.get("conversation_id"))
    if waiting.assignee_id != user.id and not visibility.can_take_chat(user, waiting, service.skills_of(user)):
        raise Forbidden("That chat needs someone its service has given the topic", code="not_allowed")
    conversation, newly = service.accept(waiting.id, user)
    db.session.commit()
    if newly:
        push.push_status(conversation)
        push.mark_queue_changed()
    return {"ok": True, "conversation": push.chat_summary(conversation),
            "messages": [service.serialise_message(m) for m in
                         service.messages_after(conversation.id, 0, include_internal=True)]}


@socketio.on("history", namespace=AGENT_NS)
@safe_handler
def agent_history(data=None):
    """Agent's console fills a gap: messages of a chat they hold after after_seq."""
    data = payload_object(data)
    user = current_staff()
    conversation = service.chat_or_404(data.get("conversation_id"))
    if conversation.assignee_id != user.id and not user.has_role(*SUPERVISORS):
        raise Forbidden("That chat is not yours", code="not_yours")
    visibility.check_conversation(user, conversation)
    db.session.commit()  # the audit entry of a sensitive read
    after = service.clean_int(data.get("after_seq", 0), "after_seq")
    return {"messages": [service.serialise_message(m) for m in
                         service.messages_after(conversation.id, after, include_internal=True)]}


def _agent_store(data, internal: bool):
    data = payload_object(data)
    conn = staff.get(request.sid)
    if conn is None:
        raise DomainError("Sign in again", code="unauthorized", status=401)
    conversation_id = service.clean_int(data.get("conversation_id"), "conversation_id", 1)
    client_id = service.clean_client_id(data.get("client_id"))
    body = service.clean_text(data.get("body"), "body", current_app.config["WEBCHAT_MAX_MESSAGE_CHARS"])
    check_rate(conn.bucket)
    states = service.HELD_STATES if internal else ("assigned",)
    # The storing statement re-checks the sender (active, chat role, holds the chat unless a
    # supervisor), so the role check costs no round trip of its own.
    stored = service.store_in_one_statement(conversation_id, "agent", body, client_id, states,
                                            user_id=conn.user_id, internal=internal,
                                            session_stamp=conn.identity.stamp, token_id=conn.identity.token_id)
    if stored is None:  # SQLite, refused, or a re-sent client id: the ORM path stores or says why
        user = current_staff()
        # Supervisors may write in any chat; agents only in their own (checked in the storing UPDATE).
        holder = None if user.has_role(*SUPERVISORS) else user
        stored = service.store_once(conversation_id, "agent", body, client_id, user=user,
                                    internal=internal, holder=holder, states=states)
    message, holder_id = stored
    push.deliver(message, conversation_id, holder_id, skip_sid=request.sid)
    return {"id": message["id"], "seq": message["seq"]}


@socketio.on("message", namespace=AGENT_NS)
@safe_handler
def agent_message(data=None):
    """Agent replies in a chat they hold; stored before the ack, then relayed to the resident."""
    return _agent_store(data, internal=False)


@socketio.on("note", namespace=AGENT_NS)
@safe_handler
def agent_note(data=None):
    """Agent adds an internal note to a chat; residents never see notes."""
    return _agent_store(data, internal=True)


@socketio.on("typing", namespace=AGENT_NS)
@safe_handler
def agent_typing(data=None):
    """Agent starts or stops typing in a chat; the resident sees it."""
    data = payload_object(data)
    user = current_staff()
    conn = staff[request.sid]
    conversation = service.held_by(data.get("conversation_id"), user)
    typing = bool(data.get("typing"))
    if conn.typing.get(conversation.id) != typing:
        conn.typing[conversation.id] = typing
        socketio.emit("typing", {"typing": typing, "who": "agent"}, namespace=RESIDENT_NS,
                      to=conv_room(conversation.id))
    return {"ok": True}


@socketio.on("transfer", namespace=AGENT_NS)
@safe_handler
def agent_transfer(data=None):
    """Agent transfers a chat to another agent or a queue, with an internal note."""
    data = payload_object(data)
    user = current_staff()
    conversation = service.held_by(data.get("conversation_id"), user)
    previous = conversation.assignee_id
    target = service.transfer(conversation, user, data.get("queue"), data.get("agent_id"), data.get("note"))
    db.session.commit()
    push.push_unassigned(conversation.id, previous, "transferred")
    for message in service.messages_after(conversation.id, conversation.last_seq - 2, include_internal=True):
        if message.author == "system":
            push.deliver(message, conversation.id, None)
    if target is not None:
        push.push_assigned(conversation, reason="transferred")
    else:
        push.mark_queue_changed()
        push.request_assignment()
        push.push_status(conversation)
    return {"ok": True}


@socketio.on("close", namespace=AGENT_NS)
@safe_handler
def agent_close(data=None):
    """Agent closes a chat with an outcome: one webchat Contact on the customer's timeline."""
    data = payload_object(data)
    user = current_staff()
    conversation = service.held_by(data.get("conversation_id"), user)
    contact, was_live = service.close_chat(conversation, user, data.get("outcome"), data.get("summary"))
    db.session.commit()
    if was_live:
        last = service.messages_after(conversation.id, conversation.last_seq - 1)
        for message in last:
            push.deliver(message, conversation.id, None)
        push.push_status(conversation)
    push.mark_queue_changed()
    push.request_assignment()
    return {"ok": True, "contact_id": contact.id}


@socketio.on("raise_case", namespace=AGENT_NS)
@safe_handler
def agent_raise_case(data=None):
    """Agent raises a case from the chat (crm.cases.service.open_case)."""
    data = payload_object(data)
    user = current_staff()
    conversation = service.held_by(data.get("conversation_id"), user)
    case = service.raise_case(conversation, user, data)
    told = None
    if conversation.status == "assigned":  # the resident is still there: give them the reference
        told = service.serialise_message(service.system_message(
            conversation, f"Your case reference is {case.reference}. Quote it if you contact us about this."))
    reference, holder = case.reference, conversation.assignee_id
    db.session.commit()
    if told is not None:
        push.deliver(told, conversation.id, holder)
    return {"ok": True, "reference": reference}


@socketio.on("link_customer", namespace=AGENT_NS)
@safe_handler
def agent_link_customer(data=None):
    """Agent points the chat at the right customer record."""
    data = payload_object(data)
    user = current_staff()
    conversation = service.held_by(data.get("conversation_id"), user)
    service.link_customer(conversation, data.get("customer_id"), actor=user)
    db.session.commit()
    return {"ok": True, "customer_id": conversation.customer_id}
