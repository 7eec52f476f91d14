"""Chat messages: stored with the conversation's next seq, once per client id; read back; their wire form.

Never commits, except store_once and store_in_one_statement, which say so.
"""
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from marshmallow import Schema, fields, post_dump
from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from ..auth.roles import ADMINS, CHAT_HOLDERS_SQL, SUPERVISORS
from ..errors import Conflict
from ..extensions import db
from ..models import Conversation, Message, User, utcnow
from ..signals import message_stored, send_after_commit
from .rules import CHANNEL, held_by


@dataclass
class StoredMessage:
    """A message stored without the ORM (one statement, or a batch), as its wire form needs it."""

    id: int
    seq: int
    author: str
    body: str
    created_at: datetime
    client_id: Optional[str]
    internal: bool = False
    author_name: Optional[str] = None


def _author_name(message) -> Optional[str]:
    if message.author != "agent":
        return None
    if isinstance(message, Message):
        return message.author_user.name if message.author_user is not None else None
    return message.author_name


class ChatMessageOut(Schema):
    """A chat message as widgets and consoles get it: `internal` only on notes, `author_name` only for agents."""

    id = fields.Integer()
    seq = fields.Integer()
    author = fields.String()
    body = fields.String()
    at = fields.Function(lambda message: message.created_at.isoformat())
    client_id = fields.String(allow_none=True)
    internal = fields.Boolean()
    author_name = fields.Function(_author_name)

    @post_dump
    def _leave_out_what_does_not_apply(self, data, **_):
        if not data.get("internal"):
            data.pop("internal", None)
        if data.get("author_name") is None:
            data.pop("author_name", None)
        return data


MESSAGE_OUT = ChatMessageOut()


def store_message(conversation_id: int, author: str, body: str, client_id: Optional[str] = None,
                  user: Optional[User] = None, internal: bool = False, states=None,
                  holder: Optional[User] = None) -> Message:
    """Store one message with the conversation's next seq (flushes; the caller commits).

    The seq comes from one atomic UPDATE ... RETURNING, which also row-locks the conversation
    on PostgreSQL until commit, so concurrent senders get consecutive seqs. With `states`, the
    conversation must be in one of them, and with `holder` held by that agent (both checked
    in the same statement, so a send costs no extra round trip). The message's
    `holder_id` attribute says who holds the chat, for delivery.
    """
    now = utcnow()
    statement = (update(Conversation).where(Conversation.id == conversation_id)
                 .values(last_seq=Conversation.last_seq + 1, last_message_at=now, updated_at=now)
                 .returning(Conversation.last_seq, Conversation.assignee_id)
                 .execution_options(synchronize_session=False))
    if states is not None:
        statement = statement.where(Conversation.status.in_(states))
    if holder is not None:
        statement = statement.where(Conversation.assignee_id == holder.id)
    row = db.session.execute(statement).first()
    if row is None:
        if holder is not None:
            held_by(conversation_id, holder)  # says why: not yours, or not open
        raise Conflict("This chat has ended", code="ended")
    seq, assignee_id = row
    message = Message(conversation_id=conversation_id, seq=seq, author=author,
                      author_user_id=getattr(user, "id", None),
                      direction="inbound" if author == "resident" else "outbound",
                      body=body, internal=internal, client_id=client_id, created_at=now)
    if user is not None:
        set_committed_value(message, "author_user", user)  # its wire form names the author without a query
    db.session.add(message)
    db.session.flush()
    message.holder_id = assignee_id  # not a column: who to deliver to
    # source="webchat": our own handlers deliver these; the receiver delivers everyone else's.
    send_after_commit(message_stored, message_id=message.id, conversation_id=conversation_id,
                      channel=CHANNEL, author=author, internal=internal, source=CHANNEL)
    return message


def store_once(conversation_id: int, author: str, body: str, client_id: str,
               user: Optional[User] = None, internal: bool = False, states=None,
               holder: Optional[User] = None) -> tuple[dict, Optional[int]]:
    """Store and commit a message unless its client id is already stored.

    Returns (wire form of the message, id of the agent holding the chat). The wire form is
    taken before the commit, so nothing is re-read afterwards: under load every extra
    connection checkout is a wait for the pool.
    """
    try:
        message = store_message(conversation_id, author, body, client_id, user, internal, states, holder)
        data = serialise_message(message)
        db.session.commit()
        return data, message.holder_id
    except IntegrityError:
        db.session.rollback()
        existing = db.session.scalar(select(Message).where(
            Message.conversation_id == conversation_id, Message.client_id == client_id))
        if existing is None:
            raise
        return serialise_message(existing), db.session.get(Conversation, conversation_id).assignee_id


# One statement per message on PostgreSQL: take the next seq and insert, or do nothing. The
# UPDATE row-locks the conversation until the statement ends, so seqs stay in send order; a
# client id already stored makes it a no-op. For staff the sender is re-read in the same
# statement: still active, still a chat role, and (agents) still holding the chat.
_STAFF_CTE = """staff AS (
    SELECT id, name, role FROM users
    WHERE id = :user_id AND active AND role IN :chat_roles AND session_stamp = :session_stamp
      AND (CAST(:token_id AS INTEGER) IS NULL OR EXISTS (
           SELECT 1 FROM api_tokens WHERE api_tokens.id = :token_id AND api_tokens.revoked_at IS NULL))
), """
_STAFF_CHECK = """
      AND (staff.role IN :any_chat_roles OR conversations.assignee_id = staff.id)"""
_STORE_SQL = """WITH {staff_cte}conv AS (
    UPDATE conversations SET last_seq = last_seq + 1, last_message_at = :now, updated_at = :now
    {staff_from}WHERE conversations.id = :conversation_id AND conversations.status IN :states{staff_check}
      AND NOT EXISTS (SELECT 1 FROM messages
                      WHERE messages.conversation_id = :conversation_id AND messages.client_id = :client_id)
    RETURNING conversations.last_seq, conversations.assignee_id{staff_name}
), stored AS (
    INSERT INTO messages (conversation_id, seq, author, author_user_id, direction, body, internal,
                          client_id, created_at)
    SELECT :conversation_id, conv.last_seq, :author, CAST(:user_id AS integer), :direction, :body, :internal,
           :client_id, :now
    FROM conv
    ON CONFLICT (conversation_id, client_id) DO NOTHING
    RETURNING id, seq
)
SELECT stored.id, stored.seq, conv.assignee_id, {name_column} FROM stored, conv"""
RESIDENT_STORE = text(_STORE_SQL.format(staff_cte="", staff_from="", staff_check="", staff_name="",
                                        name_column="NULL")).bindparams(bindparam("states", expanding=True))
STAFF_STORE = text(_STORE_SQL.format(staff_cte=_STAFF_CTE, staff_from="FROM staff ", staff_check=_STAFF_CHECK,
                                     staff_name=", staff.name", name_column="conv.name")
                   ).bindparams(bindparam("states", expanding=True), bindparam("chat_roles", expanding=True),
                                bindparam("any_chat_roles", expanding=True))


def store_in_one_statement(conversation_id: int, author: str, body: str, client_id: str, states,
                           user_id: Optional[int] = None, internal: bool = False,
                           session_stamp: Optional[str] = None,
                           token_id: Optional[int] = None) -> Optional[tuple[dict, Optional[int]]]:
    """Store a chat message in one autocommitted round trip (PostgreSQL); None when it was not stored.

    None means: not PostgreSQL, a duplicate client id, the chat not in `states`, or (staff)
    the sender no longer allowed. The caller then takes the ORM path (store_once), which
    stores, returns the duplicate, or says exactly why not.
    """
    if db.engine.dialect.name != "postgresql":
        return None
    now = utcnow()
    params = {"conversation_id": conversation_id, "author": author, "user_id": user_id, "body": body,
              "direction": "inbound" if author == "resident" else "outbound", "internal": internal,
              "client_id": client_id, "states": list(states), "now": now.replace(tzinfo=None)}
    statement = RESIDENT_STORE if user_id is None else STAFF_STORE
    if user_id is not None:
        params.update(chat_roles=list(CHAT_HOLDERS_SQL), any_chat_roles=list(SUPERVISORS + ADMINS),
                      session_stamp=session_stamp, token_id=token_id)
    # Autocommit: no BEGIN/COMMIT round trips; the one statement is atomic on its own.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = connection.execute(statement, params).first()
    if row is None:
        return None
    message_id, seq, holder_id, author_name = row
    data = serialise_message(StoredMessage(message_id, seq, author, body, now, client_id, internal, author_name))
    message_stored.send(None, message_id=message_id, conversation_id=conversation_id, channel=CHANNEL,
                        author=author, internal=internal, source=CHANNEL)
    return data, holder_id


def latest_messages(conversation_ids) -> dict[int, dict]:
    """Return the wire form of each conversation's latest resident-visible message."""
    if not conversation_ids:
        return {}
    newest = (select(Message.conversation_id, func.max(Message.seq).label("seq"))
              .where(Message.conversation_id.in_(list(conversation_ids)), Message.internal.is_(False))
              .group_by(Message.conversation_id).subquery())
    rows = db.session.scalars(select(Message).join(newest, (Message.conversation_id == newest.c.conversation_id)
                                                   & (Message.seq == newest.c.seq)))
    return {m.conversation_id: serialise_message(m) for m in rows}


def system_message(conversation: Conversation, body: str) -> Message:
    """Store a message from the system (queue news, transfers) in the conversation."""
    return store_message(conversation.id, "system", body)


def messages_after(conversation_id: int, after_seq: int, include_internal: bool = False) -> list[Message]:
    """Return the conversation's messages with seq > after_seq, in order."""
    query = select(Message).where(Message.conversation_id == conversation_id, Message.seq > after_seq)
    if not include_internal:
        query = query.where(Message.internal.is_(False))
    return list(db.session.scalars(query.order_by(Message.seq)))


def serialise_message(message) -> dict:
    """Return the wire form of a message (a Message row or a StoredMessage)."""
    return MESSAGE_OUT.dump(message)


def messages_of(conversation_ids, include_internal: bool = True) -> dict[int, list[Message]]:
    """Return the messages of several conversations in seq order, in one query."""
    found: dict[int, list[Message]] = {cid: [] for cid in conversation_ids}
    if not found:
        return found
    query = select(Message).where(Message.conversation_id.in_(list(found)))
    if not include_internal:
        query = query.where(Message.internal.is_(False))
    for message in db.session.scalars(query.order_by(Message.conversation_id, Message.seq)):
        found[message.conversation_id].append(message)
    return found
