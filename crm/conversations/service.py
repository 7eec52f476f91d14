"""What staff do in a conversation of any channel: add a message, reply, note, resolve, assign, move, transfer.

A channel adds what only it knows (email sends over SMTP, a chat keeps its queue); the rest is here.
Nothing here commits: the API, the views and the socket handlers commit at the edge.
"""
from datetime import datetime
from typing import Iterable, Optional

from blinker import Namespace
from sqlalchemy import inspect, select, update

from .. import visibility
from ..audit import audit
from ..auth.roles import CHAT_HOLDERS_SQL
from ..batching import stage
from ..channels import registry
from ..errors import Conflict, NotFound, ValidationFailed
from ..extensions import db
from ..models import OUTCOMES, Contact, Conversation, Message, Queue, User, utcnow
from ..signals import message_stored, send_after_commit
from . import lifecycle

MAX_REPLY_CHARS = 20000

_signals = Namespace()
# Sent after commit when a conversation is moved to another agent or queue, so the webchat area can tell
# the resident and the agents: payload conversation_id, from_agent_id, to_agent_id, queue_id.
conversation_moved = _signals.signal("supervisor-conversation-moved")


def append_message(conversation: Conversation, author: str, body: str, *, direction: str,
                   html: Optional[str] = None, author_user=None, internal: bool = False,
                   email_message_id: Optional[str] = None, delivery_status: Optional[str] = None,
                   sent_at: Optional[datetime] = None, locked: bool = False) -> Message:
    """Add a message with the conversation's next seq; staged (flushed at once outside a batch).

    `locked`: the caller holds the conversation's row lock (an email batch), so it numbers the message itself.
    """
    now = utcnow()
    if inspect(conversation).pending or locked:
        # New in this batch (nobody else can see it yet) or locked by it: the seq is simply the next number.
        seq = conversation.last_seq = (conversation.last_seq or 0) + 1
        conversation.last_message_at = conversation.updated_at = now
    else:  # one atomic UPDATE ... RETURNING, so concurrent writers never share a seq
        seq = db.session.execute(
            update(Conversation).where(Conversation.id == conversation.id)
            .values(last_seq=Conversation.last_seq + 1, last_message_at=now, updated_at=now)
            .returning(Conversation.last_seq).execution_options(synchronize_session=False)).scalar_one()
        db.session.expire(conversation, ["last_seq", "last_message_at", "updated_at"])
    message = Message(conversation_id=conversation.id, seq=seq, author=author, direction=direction,
                      author_user_id=getattr(author_user, "id", None), body=body or "", html=html,
                      internal=internal, email_message_id=email_message_id,
                      delivery_status=delivery_status, created_at=now, sent_at=sent_at)
    stage(message)
    return message


def _checked_body(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ValidationFailed("Write a reply first", {"body": ["required"]})
    if len(body) > MAX_REPLY_CHARS:
        raise ValidationFailed("The reply is too long", {"body": [f"at most {MAX_REPLY_CHARS} characters"]})
    return body


def note(conversation: Conversation, agent, body: str) -> Message:
    """Add an internal note, which never goes to the resident."""
    body = _checked_body(body)
    message = append_message(conversation, "agent", body, direction="outbound", author_user=agent, internal=True)
    send_after_commit(message_stored, message_id=message.id, conversation_id=conversation.id,
                      channel=conversation.channel, author="agent", internal=True, source="api")
    return message


def reply(conversation: Conversation, agent, body: str, *, internal: bool = False,
          attachments: Iterable = ()) -> Message:
    """Store an agent's reply (or internal note) and send it by the conversation's channel (crm/channels/registry.py).

    `attachments` are (filename, content type, bytes) sent with an email reply.
    """
    if internal:
        return note(conversation, agent, body)
    body = _checked_body(body)
    adapter = registry.find(conversation.channel)
    if adapter is None:
        raise Conflict(f"No channel {conversation.channel} to reply by", code="cannot_reply")
    return adapter.reply(conversation, agent, body, attachments)


def resolve(conversation: Conversation, agent, outcome: str) -> None:
    """Mark a conversation resolved; its contacts still pending take the outcome (for FCR reporting)."""
    if outcome not in OUTCOMES or outcome == "pending":
        raise ValidationFailed("Choose an outcome", {"outcome": [f"one of {', '.join(OUTCOMES[:-1])}"]})
    lifecycle.resolved(conversation)
    if conversation.assignee_id is None:
        conversation.assignee_id = agent.id
    pending = db.session.scalars(select(Contact).where(
        Contact.conversation_id == conversation.id, Contact.outcome == "pending")).all()
    for contact in pending:
        contact.outcome = outcome
        contact.agent_id = contact.agent_id or agent.id
    audit(agent, "conversation.resolve", "conversation", conversation.id, outcome=outcome)


def assign(actor, conversation: Conversation, assignee_id: Optional[int]) -> Optional[User]:
    """Give the conversation to a member of staff, or back to its queue (None); return who has it."""
    user = None
    if assignee_id is not None:
        user = db.session.get(User, assignee_id)
        if user is None or not user.active:
            raise ValidationFailed("Choose a member of staff", {"assignee": ["no such active member of staff"]})
    lifecycle.assigned(conversation, user.id if user else None)
    audit(actor, "conversation.assign", "conversation", conversation.id, assignee=user.id if user else None)
    return user


def active_holder(user_id: int) -> User:
    """Return the active member of staff who may hold chats and conversations, else NotFound."""
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.role not in CHAT_HOLDERS_SQL:
        raise NotFound(f"No active agent {user_id}", {"agent_id": ["no such active agent"]})
    return user


def move(actor, conversation: Conversation, *, agent_id: Optional[int] = None,
         queue_code: Optional[str] = None) -> Conversation:
    """Give a live chat or an open email to another agent, or put it back on a queue (a supervisor's move)."""
    from ..webchat import assignment as webchat  # noqa: PLC0415  (the webchat area builds on this core)

    if (agent_id is None) == (queue_code is None):
        raise ValidationFailed("Say where it goes", {"agent_id": ["give exactly one of agent_id or queue"]})
    visibility.check_conversation(actor, conversation)
    if conversation.channel not in lifecycle.MOVABLE_CHANNELS:
        raise ValidationFailed("Only chats and emails move", {"conversation_id": ["not a chat or email"]})
    lifecycle.check_move(conversation)
    before = {"agent_id": conversation.assignee_id, "queue_id": conversation.queue_id}
    is_chat = conversation.channel == "webchat"
    now = utcnow()
    if agent_id is not None:
        agent = active_holder(agent_id)
        if is_chat:
            webchat.assign(conversation, agent, now)
        else:
            conversation.assignee_id = agent.id
    else:
        queue = db.session.scalar(select(Queue).where(Queue.code == queue_code))
        if queue is None:
            raise NotFound(f"No queue {queue_code}", {"queue": ["unknown queue"]})
        if queue.channel != conversation.channel:
            raise ValidationFailed("That queue takes another channel",
                                   {"queue": [f"{queue.code} is a {queue.channel} queue"]})
        visibility.check_conversation_move(actor, conversation, queue)
        if is_chat:
            webchat.put_back(conversation, queue, now)
        else:
            conversation.queue_id = queue.id
            conversation.assignee_id = None
            if conversation.status not in lifecycle.UNASSIGNED:
                conversation.status = "open"
    after = {"agent_id": conversation.assignee_id, "queue_id": conversation.queue_id}
    audit(actor, "supervisor.move_conversation", "conversation", conversation.id,
          channel=conversation.channel, before=before, after=after)
    send_after_commit(conversation_moved, conversation_id=conversation.id,
                      from_agent_id=before["agent_id"], to_agent_id=after["agent_id"],
                      queue_id=after["queue_id"])
    return conversation


def transfer(conversation: Conversation, actor: User, *, queue_code: Optional[str] = None,
             agent_id: Optional[int] = None, note: Optional[str] = None) -> Optional[User]:
    """An agent hands their chat on to another agent or queue, with a note; returns the new agent.

    A chat's transfer is the webchat area's (it tells the resident and keeps the queue order).
    """
    from ..webchat import assignment as webchat  # noqa: PLC0415  (the webchat area builds on this core)

    if conversation.channel != "webchat":
        raise ValidationFailed("Only a chat is transferred; move an email instead",
                               {"conversation_id": ["not a chat"]})
    return webchat.transfer(conversation, actor, queue_code=queue_code, agent_id=agent_id, note=note)
