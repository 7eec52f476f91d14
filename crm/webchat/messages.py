"""Chat messages: stored with the conversation's next seq, once per client id; read back; their wire form.

Never commits, except store_once and (on PostgreSQL) store_messages, which say so. The handlers'
messages are stored in batches by crm.webchat.writer through store_messages.
"""
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from marshmallow import Schema, fields, post_dump
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from ..auth.roles import ADMINS, CHAT_HOLDERS_SQL, SUPERVISORS
from ..errors import Conflict
from ..extensions import db
from ..models import ApiToken, Conversation, Message, User, utcnow
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


@dataclass
class MessageRequest:
    """One chat message a handler hands to the writer; a staff sender's rights are re-checked when it is stored."""

    conversation_id: int
    author: str  # resident | agent
    body: str
    client_id: str
    states: tuple  # the chat must be in one of these
    user_id: Optional[int] = None  # staff: who sends, with the session stamp and token they connected with
    internal: bool = False
    session_stamp: Optional[str] = None
    token_id: Optional[int] = None


def _staff_senders(requests) -> dict[int, tuple[str, str]]:
    """Return {user id: (name, role)} for the batch's staff senders who may still write chats as they connected."""
    user_ids = {r.user_id for r in requests if r.user_id is not None}
    if not user_ids:
        return {}
    users = {row.id: row for row in db.session.execute(
        select(User.id, User.name, User.role, User.session_stamp)
        .where(User.id.in_(list(user_ids)), User.active.is_(True), User.role.in_(CHAT_HOLDERS_SQL)))}
    token_ids = {r.token_id for r in requests if r.token_id is not None and r.user_id in users}
    live_tokens = set(db.session.scalars(select(ApiToken.id).where(
        ApiToken.id.in_(list(token_ids)), ApiToken.revoked_at.is_(None)))) if token_ids else set()
    return {r.user_id: (users[r.user_id].name, users[r.user_id].role) for r in requests
            if r.user_id in users and users[r.user_id].session_stamp == r.session_stamp
            and (r.token_id is None or r.token_id in live_tokens)}


def store_messages(requests) -> list[Optional[tuple[dict, Optional[int], bool]]]:
    """Store a batch of chat messages; per request (wire form, id of the agent holding the chat, newly stored).

    None for a request means it was not stored as asked: the chat is not in its states, a staff
    sender is no longer active, a chat role, signed in as they connected and (agents) holding
    the chat, another transaction holds the chat's row locked, or (PostgreSQL) its client id is
    already stored. The caller stores that one alone, which waits for the lock, returns the
    stored duplicate or says why. Seqs follow the batch's order within each chat; the batch's
    chats are row-locked in id order, skipping those locked elsewhere, so one slow transaction
    never holds up the whole batch. The same client id twice in a batch is stored once and
    answered twice.
    On PostgreSQL the batch is one autocommitted statement (one round trip, committed on return);
    elsewhere it is written in the session's transaction and the caller commits.
    """
    if db.engine.dialect.name == "postgresql":
        return _store_in_one_statement(requests)
    return _store_in_the_session(requests)


# The whole batch in one statement: lock its chats in id order (skipping any locked elsewhere),
# keep the messages whose chat is in their states and whose staff sender may still write, number
# them per chat in batch order, bump each chat's last_seq once and insert. A client id stored meanwhile by another process
# leaves a gap in the seqs (ON CONFLICT), as internal notes do for residents.
# Written for the driver (psycopg's %(name)s), with every list an array: the same SQL text each time, so
# nothing is compiled per batch and psycopg keeps it prepared.
BATCH_STORE = """
WITH input AS (
    SELECT * FROM unnest(CAST(%(n)s AS integer[]), CAST(%(conversation_id)s AS integer[]), CAST(%(author)s AS text[]),
                         CAST(%(user_id)s AS integer[]), CAST(%(body)s AS text[]), CAST(%(internal)s AS boolean[]),
                         CAST(%(client_id)s AS text[]), CAST(%(states)s AS text[]), CAST(%(stamp)s AS text[]),
                         CAST(%(token_id)s AS integer[]))
        AS i(n, conversation_id, author, user_id, body, internal, client_id, states, stamp, token_id)
), locked AS (
    SELECT id, status, assignee_id, last_seq FROM conversations
    WHERE id IN (SELECT conversation_id FROM input) ORDER BY id FOR UPDATE SKIP LOCKED
), accepted AS (
    SELECT i.n, i.conversation_id, i.author, i.user_id, i.body, i.internal, i.client_id, l.assignee_id,
           u.name AS author_name, l.last_seq + row_number() OVER (PARTITION BY i.conversation_id ORDER BY i.n) AS seq
    FROM input i JOIN locked l ON l.id = i.conversation_id LEFT JOIN users u ON u.id = i.user_id
    WHERE l.status = ANY(string_to_array(i.states, ','))
      AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = i.conversation_id
                                                AND m.client_id = i.client_id)
      AND (i.user_id IS NULL OR (
           u.active AND u.role = ANY(CAST(%(chat_roles)s AS text[])) AND u.session_stamp = i.stamp
           AND (i.token_id IS NULL OR EXISTS (SELECT 1 FROM api_tokens t
                                              WHERE t.id = i.token_id AND t.revoked_at IS NULL))
           AND (u.role = ANY(CAST(%(any_chat_roles)s AS text[])) OR l.assignee_id = u.id)))
), bumped AS (
    UPDATE conversations SET last_seq = conversations.last_seq + counted.k, last_message_at = %(now)s,
                             updated_at = %(now)s
    FROM (SELECT conversation_id, count(*) AS k FROM accepted GROUP BY conversation_id) AS counted
    WHERE conversations.id = counted.conversation_id
), stored AS (
    INSERT INTO messages (conversation_id, seq, author, author_user_id, direction, body, internal, client_id,
                          created_at)
    SELECT conversation_id, seq, author, user_id, CASE WHEN author = 'resident' THEN 'inbound' ELSE 'outbound' END,
           body, internal, client_id, %(now)s
    FROM accepted ORDER BY n
    ON CONFLICT (conversation_id, client_id) DO NOTHING
    RETURNING id, conversation_id, client_id
)
SELECT accepted.n, stored.id, accepted.seq, accepted.assignee_id, accepted.author_name
FROM stored JOIN accepted USING (conversation_id, client_id)
"""


def _store_in_one_statement(requests) -> list:
    outcomes: list = [None] * len(requests)
    same_message: dict = {}  # (chat, client id) -> the indexes of the requests that sent it
    firsts = []
    for n, request in enumerate(requests):
        key = (request.conversation_id, request.client_id)
        if key not in same_message:
            firsts.append(request)
            same_message[key] = []
        same_message[key].append(n)
    now = utcnow()
    params = {
        "n": list(range(len(firsts))), "conversation_id": [r.conversation_id for r in firsts],
        "author": [r.author for r in firsts], "user_id": [r.user_id for r in firsts], "body": [r.body for r in firsts],
        "internal": [r.internal for r in firsts], "client_id": [r.client_id for r in firsts],
        "states": [",".join(r.states) for r in firsts], "stamp": [r.session_stamp for r in firsts],
        "token_id": [r.token_id for r in firsts], "now": now.replace(tzinfo=None),
        "chat_roles": list(CHAT_HOLDERS_SQL), "any_chat_roles": list(SUPERVISORS + ADMINS)}
    # Autocommit: no BEGIN/COMMIT round trips; the one statement is atomic on its own.
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        rows = connection.exec_driver_sql(BATCH_STORE, params).all()
    for index, message_id, seq, holder_id, author_name in rows:
        request = firsts[index]
        data = serialise_message(StoredMessage(message_id, seq, request.author, request.body, now, request.client_id,
                                               request.internal, author_name))
        sent = same_message[(request.conversation_id, request.client_id)]
        for n in sent:
            outcomes[n] = (data, holder_id, n == sent[0])
    return outcomes


def _store_in_the_session(requests) -> list:
    chat_ids = sorted({r.conversation_id for r in requests})
    chats = {row.id: row for row in db.session.execute(
        select(Conversation.id, Conversation.status, Conversation.assignee_id, Conversation.last_seq)
        .where(Conversation.id.in_(chat_ids)).order_by(Conversation.id).with_for_update(skip_locked=True))}
    stored_before = {(m.conversation_id, m.client_id): m for m in db.session.scalars(select(Message).where(
        Message.conversation_id.in_(chat_ids), Message.client_id.in_(list({r.client_id for r in requests}))))}
    senders = _staff_senders(requests)
    now = utcnow()
    outcomes: list = [None] * len(requests)
    last_seq = {chat_id: chat.last_seq for chat_id, chat in chats.items()}
    new_rows, first_of = [], {}
    for n, request in enumerate(requests):
        chat, key = chats.get(request.conversation_id), (request.conversation_id, request.client_id)
        if chat is None or chat.status not in request.states:
            continue
        author_name = None
        if request.user_id is not None:
            sender = senders.get(request.user_id)
            if sender is None or (sender[1] not in SUPERVISORS + ADMINS and chat.assignee_id != request.user_id):
                continue
            author_name = sender[0]
        if key in stored_before:
            outcomes[n] = (serialise_message(stored_before[key]), chat.assignee_id, False)
            continue
        if key in first_of:
            first_of[key].append(n)
            continue
        last_seq[chat.id] += 1
        first_of[key] = [n]
        new_rows.append((n, StoredMessage(None, last_seq[chat.id], request.author, request.body, now,
                                          request.client_id, request.internal, author_name), request))
    if not new_rows:
        return outcomes
    messages_table, chats_table = Message.__table__, Conversation.__table__
    ids = db.session.execute(insert(messages_table).returning(messages_table.c.id, sort_by_parameter_order=True), [
        {"conversation_id": request.conversation_id, "seq": message.seq, "author": message.author,
         "author_user_id": request.user_id, "direction": "inbound" if message.author == "resident" else "outbound",
         "body": message.body, "internal": message.internal, "client_id": message.client_id, "created_at": now}
        for _, message, request in new_rows]).scalars().all()
    db.session.execute(update(chats_table).where(chats_table.c.id == bindparam("chat_id")).values(
        last_seq=bindparam("new_last_seq"), last_message_at=now, updated_at=now),
        [{"chat_id": chat_id, "new_last_seq": seq} for chat_id, seq in last_seq.items()
         if seq != chats[chat_id].last_seq])
    for (n, message, request), message_id in zip(new_rows, ids):
        message.id = message_id
        data, holder_id = serialise_message(message), chats[request.conversation_id].assignee_id
        for same in first_of[(request.conversation_id, request.client_id)]:
            outcomes[same] = (data, holder_id, same == n)
    return outcomes


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
