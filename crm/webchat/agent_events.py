"""Socket.IO namespace /agent: staff consoles connect, set presence, accept, reply, note, transfer, close.

Every handler is thin: re-check who is asking, validate, call the service, commit, then emit
(crm.webchat.guard turns refusals into error acks). /supervisor is crm.supervisor.events.
"""
import logging
from dataclasses import dataclass, field
from typing import Optional

from flask import current_app, request
from flask_socketio import join_room

from .. import visibility
from ..auth.roles import CHAT_STAFF, SUPERVISORS
from ..auth.sessions import SocketIdentity, forget_socket, record_socket, socket_identity, still_valid
from ..conversations import service as conversations
from ..errors import DomainError, Forbidden
from ..extensions import db, socketio
from ..models import User
from . import assignment, chats, messages, push, rules, writer
from .guard import check_rate, new_bucket, payload_object, safe_handler
from .limits import TokenBucket
from .push import AGENT_NS, RESIDENT_NS, conv_room, user_room

log = logging.getLogger("crm.webchat")


@dataclass
class StaffConnection:
    user_id: int
    bucket: TokenBucket
    typing: dict = field(default_factory=dict)
    identity: Optional[SocketIdentity] = None  # the session stamp or token it connected with


staff: dict[str, StaffConnection] = {}


def current_staff(roles=CHAT_STAFF) -> User:
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
    if user is None or not user.has_role(*CHAT_STAFF):
        db.session.rollback()
        raise ConnectionRefusedError("forbidden" if user else "unauthorized")
    push.ensure_sweeper(current_app._get_current_object())
    staff[request.sid] = StaffConnection(user_id=user.id, bucket=new_bucket(), identity=identity)
    push.local_agent_sids[request.sid] = user.id
    assignment.add_agent_socket(request.sid, user, push.SERVER_ID)
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
        assignment.remove_agent_socket(request.sid)
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
    status = assignment.clean_presence(data.get("status"))
    assignment.set_presence(user, status)
    db.session.commit()
    if status == "available":
        push.request_assignment()
    return {"ok": True, "status": status}


@socketio.on("mine", namespace=AGENT_NS)
@safe_handler
def agent_mine(data=None):
    """Agent's console asks for the chats it holds (after a reconnect), each with its messages."""
    user = current_staff()
    return {"items": [dict(push.chat_summary(c), messages=[
        messages.serialise_message(m) for m in messages.messages_after(c.id, 0, include_internal=True)])
        for c in chats.held_chats([user.id])]}


@socketio.on("accept", namespace=AGENT_NS)
@safe_handler
def agent_accept(data=None):
    """Agent picks a waiting chat (or re-opens one they hold); gets its messages."""
    data = payload_object(data)
    user = current_staff()
    waiting = rules.chat_or_404(data.get("conversation_id"))
    if waiting.assignee_id != user.id and not visibility.can_take_chat(user, waiting, assignment.skills_of(user)):
        raise Forbidden("That chat needs someone its service has given the topic", code="not_allowed")
    conversation, newly = assignment.accept(waiting.id, user)
    db.session.commit()
    if newly:
        push.push_status(conversation)
        push.mark_queue_changed()
    return {"ok": True, "conversation": push.chat_summary(conversation),
            "messages": [messages.serialise_message(m) for m in
                         messages.messages_after(conversation.id, 0, include_internal=True)]}


@socketio.on("history", namespace=AGENT_NS)
@safe_handler
def agent_history(data=None):
    """Agent's console fills a gap: messages of a chat they hold after after_seq."""
    data = payload_object(data)
    user = current_staff()
    conversation = rules.chat_or_404(data.get("conversation_id"))
    if conversation.assignee_id != user.id and not user.has_role(*SUPERVISORS):
        raise Forbidden("That chat is not yours", code="not_yours")
    visibility.check_conversation(user, conversation)
    db.session.commit()  # the audit entry of a sensitive read
    after = rules.clean_int(data.get("after_seq", 0), "after_seq")
    return {"messages": [messages.serialise_message(m) for m in
                         messages.messages_after(conversation.id, after, include_internal=True)]}


def _agent_store(data, internal: bool):
    data = payload_object(data)
    conn = staff.get(request.sid)
    if conn is None:
        raise DomainError("Sign in again", code="unauthorized", status=401)
    conversation_id = rules.clean_int(data.get("conversation_id"), "conversation_id", 1)
    client_id = rules.clean_client_id(data.get("client_id"))
    body = rules.clean_text(data.get("body"), "body", current_app.config["WEBCHAT_MAX_MESSAGE_CHARS"])
    check_rate(conn.bucket)
    states = rules.HELD_STATES if internal else ("assigned",)
    # The writer re-checks the sender with the rest of its batch (active, chat role, signed in as
    # they connected, holds the chat unless a supervisor): no round trip of this event's own.
    def alone():
        user = current_staff()
        # Supervisors may write in any chat; agents only in their own (checked in the storing UPDATE).
        holder = None if user.has_role(*SUPERVISORS) else user
        return messages.store_once(conversation_id, "agent", body, client_id, user=user,
                                   internal=internal, holder=holder, states=states)

    message, holder_id = writer.store(messages.MessageRequest(
        conversation_id, "agent", body, client_id, states, user_id=conn.user_id, internal=internal,
        session_stamp=conn.identity.stamp, token_id=conn.identity.token_id), alone)
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
    conversation = rules.held_by(data.get("conversation_id"), user)
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
    conversation = rules.held_by(data.get("conversation_id"), user)
    previous = conversation.assignee_id
    target = conversations.transfer(conversation, user, queue_code=data.get("queue"), agent_id=data.get("agent_id"),
                                    note=data.get("note"))
    db.session.commit()
    push.push_unassigned(conversation.id, previous, "transferred")
    # The note (internal) and the system message to the resident.
    push.after_chat_changed(conversation, wrote=2, to_agent=target is not None)
    return {"ok": True}


@socketio.on("close", namespace=AGENT_NS)
@safe_handler
def agent_close(data=None):
    """Agent closes a chat with an outcome: one webchat Contact on the customer's timeline."""
    data = payload_object(data)
    user = current_staff()
    conversation = rules.held_by(data.get("conversation_id"), user)
    contact, was_live = chats.close_chat(conversation, user, data.get("outcome"), data.get("summary"))
    db.session.commit()
    push.after_chat_changed(conversation, wrote=1 if was_live else 0)  # a live chat is told it closed
    return {"ok": True, "contact_id": contact.id}


@socketio.on("raise_case", namespace=AGENT_NS)
@safe_handler
def agent_raise_case(data=None):
    """Agent raises a case from the chat (crm.cases.service.open_case)."""
    data = payload_object(data)
    user = current_staff()
    conversation = rules.held_by(data.get("conversation_id"), user)
    case = chats.raise_case(conversation, user, data)
    told = None
    if conversation.status == "assigned":  # the resident is still there: give them the reference
        told = messages.serialise_message(messages.system_message(
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
    conversation = rules.held_by(data.get("conversation_id"), user)
    chats.link_customer(conversation, data.get("customer_id"), actor=user)
    db.session.commit()
    return {"ok": True, "customer_id": conversation.customer_id}
