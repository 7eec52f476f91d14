"""Webchat logic: start, store, queue, assign, transfer, requeue, close. Never commits.

All queue state lives in the database (conversations + chat_sessions + agent_presence +
agent_sockets + agent_skills), so any number of server processes share one queue. Assignment
takes a PostgreSQL advisory lock so two processes never hand out the same agent's last slot.
"""
import secrets
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Optional
from zoneinfo import ZoneInfo

import holidays
from flask import current_app
from sqlalchemy import and_, bindparam, func, literal, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import contains_eager

from .. import visibility
from ..auth.roles import ADMINS, CHAT_HOLDERS_SQL, CHAT_STAFF, SUPERVISORS
from ..batching import stage, write_batch
from ..cases.service import open_case
from ..customers.identity import resolve_customer, set_case_contact
from ..customers.timeline import record_contact
from ..errors import Conflict, DomainError, NotFound, ValidationFailed
from ..extensions import db
from ..models import (
    OUTCOMES, AgentPresence, AgentSkill, AgentSocket, Case, Category, ChatSession, Conversation, Customer, Message,
    OpeningHours, Queue, Service, User, utcnow,
)
from ..signals import message_stored, send_after_commit

CHANNEL = "webchat"
# Chat topics residents choose in the pre-chat form (code, label); agents' skills are these codes.
TOPICS = [
    ("council_tax", "Council Tax"), ("waste", "Bins and recycling"), ("highways", "Roads and pavements"),
    ("adult_social_care", "Adult social care"), ("libraries", "Libraries"),
]
LIVE_STATES = ("queued", "assigned")  # a resident is (or may be) still there
HELD_STATES = ("assigned", "ended")  # counts against the agent's capacity until closed
CHAT_ROLES = CHAT_STAFF
ASSIGN_LOCK_KEY = 5_054_801  # arbitrary: the PostgreSQL advisory lock of chat assignment
PRESENCE_CHOICES = ("available", "busy", "away")


def cfg(name):
    """Read a webchat setting."""
    return current_app.config[name]


# ---- input -------------------------------------------------------------------------------

def clean_text(raw, field: str, limit: int, required: bool = True) -> str:
    """Return resident or agent text as plain text: control characters removed, size checked."""
    if raw is None:
        raw = ""
    if not isinstance(raw, str):
        raise ValidationFailed(f"{field} must be text", {field: ["must be a string"]})
    text_ = "".join(ch for ch in raw if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()
    if required and not text_:
        raise ValidationFailed(f"{field} is required", {field: ["required"]})
    if len(text_) > limit:
        raise ValidationFailed(f"{field} is too long", {field: [f"at most {limit} characters"]}, code="too_long")
    return text_


def clean_client_id(raw) -> str:
    """Return a client id: 1-100 printable characters."""
    if not isinstance(raw, str) or not 0 < len(raw) <= 100 or not raw.isprintable():
        raise ValidationFailed("client_id is required", {"client_id": ["1-100 printable characters"]})
    return raw


def clean_int(raw, field: str, minimum: int = 0) -> int:
    """Return raw as an int no smaller than minimum, or refuse."""
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise ValidationFailed(f"{field} must be a whole number", {field: [f"an integer >= {minimum}"]})
    return raw


# ---- opening hours -------------------------------------------------------------------------

def local_now(now: Optional[datetime] = None) -> datetime:
    """Return now in the council's time zone."""
    return (now or utcnow()).astimezone(ZoneInfo(cfg("WEBCHAT_TIMEZONE")))


@lru_cache(maxsize=32)
def _bank_holidays(subdiv: str, year: int):
    # Building the calendar costs milliseconds of CPU: once per year and region, not per start.
    return holidays.country_holidays("GB", subdiv=subdiv, years=year)


def is_bank_holiday(day) -> bool:
    """Say whether a date is a bank holiday where the council is."""
    return day in _bank_holidays(cfg("WEBCHAT_HOLIDAY_SUBDIV"), day.year)


def is_open(now: Optional[datetime] = None) -> bool:
    """Say whether webchat is staffed now; with no opening hours configured it always is."""
    hours = db.session.scalars(select(OpeningHours)).all()
    if not hours:
        return True
    here = local_now(now)
    if is_bank_holiday(here.date()):
        return False
    return any(h.weekday == here.weekday() and h.opens <= here.time() < h.closes for h in hours)


def next_opening(now: Optional[datetime] = None) -> Optional[datetime]:
    """Return when webchat next opens (local time), or None when no hours are configured."""
    hours = db.session.scalars(select(OpeningHours)).all()
    if not hours:
        return None
    here = local_now(now)
    for days_ahead in range(0, 15):
        day = (here + timedelta(days=days_ahead)).date()
        if is_bank_holiday(day):
            continue
        for h in sorted((h for h in hours if h.weekday == day.weekday()), key=lambda h: h.opens):
            opening = datetime.combine(day, h.opens, here.tzinfo)
            if opening > here or (days_ahead == 0 and h.opens <= here.time() < h.closes):
                return opening
    return None


# ---- starting and storing --------------------------------------------------------------------

def open_chats_for(visitor_id: Optional[str], ip: Optional[str]) -> tuple[int, int]:
    """Return how many live chats this visitor id and this address have (one query)."""
    matches = [c for c in (ChatSession.visitor_id == visitor_id if visitor_id else None,
                           ChatSession.visitor_ip == ip if ip else None) if c is not None]
    if not matches:
        return 0, 0
    by_visitor = func.count().filter(ChatSession.visitor_id == visitor_id) if visitor_id else literal(0)
    by_ip = func.count().filter(ChatSession.visitor_ip == ip) if ip else literal(0)
    row = db.session.execute(select(by_visitor, by_ip).select_from(ChatSession).join(Conversation)
                             .where(Conversation.status.in_(LIVE_STATES), or_(*matches))).one()
    return int(row[0] or 0), int(row[1] or 0)


def chat_queue_for(topic: Optional[str]) -> Optional[Queue]:
    """Return the webchat queue for a topic (queue code webchat_<topic>), else the general one."""
    queues = db.session.scalars(select(Queue).where(Queue.channel == CHANNEL)).all()
    by_code = {q.code: q for q in queues}
    return by_code.get(f"webchat_{topic}") or by_code.get("webchat") or (queues[0] if queues else None)


@dataclass
class StartRequest:
    """What a resident's `start` asked for, as the batched starter takes it."""

    payload: dict
    visitor_id: Optional[str]
    ip: Optional[str]
    sid: Optional[str] = None  # the resident's socket, which joins the chat's room before the commit


def _clean_start(payload, visitor_id):
    """Validate the pre-chat form; return (name, email, phone, topic, visitor_id)."""
    if not isinstance(payload, dict):
        raise ValidationFailed("start needs an object", {"payload": ["must be an object"]})
    name = clean_text(payload.get("name"), "name", cfg("WEBCHAT_MAX_NAME_CHARS"))
    email = clean_text(payload.get("email"), "email", 254, required=False) or None
    phone = clean_text(payload.get("phone"), "phone", 40, required=False) or None
    topic = clean_text(payload.get("topic"), "topic", 60, required=False) or None
    if visitor_id is not None and (not isinstance(visitor_id, str) or len(visitor_id) > 64):
        visitor_id = None
    return name, email, phone, topic, visitor_id


def _too_many(by_visitor: int, by_ip: int) -> None:
    if by_visitor >= cfg("WEBCHAT_MAX_OPEN_PER_VISITOR") or by_ip >= cfg("WEBCHAT_MAX_OPEN_PER_IP"):
        raise DomainError("You already have a chat open", code="too_many_chats", status=429)


def _new_chat(fields, ip, queue, now) -> Conversation:
    name, email, phone, topic, visitor_id = fields
    customer = resolve_customer(name, email, phone, source="chat")
    conversation = Conversation(
        customer_id=customer.id, channel=CHANNEL, status="queued", subject=f"Webchat: {topic or 'general'}",
        token=secrets.token_urlsafe(32), queue_id=queue.id if queue else None, topic=topic, last_seq=0,
        created_at=now, updated_at=now)
    # One flush for both rows: the chat session takes the conversation's id through the relationship.
    conversation.chat = ChatSession(visitor_id=visitor_id, visitor_ip=ip, name=name, email=email, phone=phone,
                                    queued_at=now, priority=0)
    return conversation


def start_chat(payload, visitor_id: Optional[str], ip: Optional[str]) -> Conversation:
    """Start a chat from the pre-chat form: resolve the customer, queue the conversation."""
    fields = _clean_start(payload, visitor_id)
    _too_many(*open_chats_for(fields[4], ip))
    conversation = _new_chat(fields, ip, chat_queue_for(fields[3]), utcnow())
    db.session.add(conversation)
    db.session.flush()
    return conversation


def _open_chats_by(column, values) -> dict:
    if not values:
        return {}
    return dict(db.session.execute(select(column, func.count()).select_from(ChatSession).join(Conversation)
                                   .where(Conversation.status.in_(LIVE_STATES), column.in_(list(values)))
                                   .group_by(column)).all())


def start_chats(requests) -> list:
    """Start many chats in one flush; return per request {"conversation_id", "token"} or the DomainError refusing it.

    What a burst of `start`s costs: two queries for every open-chat limit, one per resident only
    for the identifiers they gave, and one multi-row INSERT per table. A first message is stored
    with its chat (seq 1). Never commits; the caller commits before anyone is told.
    """
    results, accepted = [None] * len(requests), []
    for n, request in enumerate(requests):
        try:
            fields = _clean_start(request.payload, request.visitor_id)
            first = request.payload.get("message")
            body = clean_text(first, "message", cfg("WEBCHAT_MAX_MESSAGE_CHARS")) \
                if isinstance(first, str) and first.strip() else None
            accepted.append((n, request, fields, body))
        except DomainError as refusal:
            results[n] = refusal
    if not accepted:
        return results
    by_visitor = _open_chats_by(ChatSession.visitor_id, {f[4] for _, _, f, _ in accepted if f[4]})
    by_ip = _open_chats_by(ChatSession.visitor_ip, {r.ip for _, r, _, _ in accepted if r.ip})
    queues, now, made = {}, utcnow(), []
    with write_batch(len(accepted)):
        for n, request, fields, body in accepted:
            visitor_id = fields[4]
            try:
                _too_many(by_visitor.get(visitor_id, 0) if visitor_id else 0,
                          by_ip.get(request.ip, 0) if request.ip else 0)
            except DomainError as refusal:
                results[n] = refusal
                continue
            if visitor_id:
                by_visitor[visitor_id] = by_visitor.get(visitor_id, 0) + 1
            if request.ip:
                by_ip[request.ip] = by_ip.get(request.ip, 0) + 1
            topic = fields[3]
            if topic not in queues:
                queues[topic] = chat_queue_for(topic)
            conversation = stage(_new_chat(fields, request.ip, queues[topic], now), flush=False)
            if body is not None:
                conversation.last_seq, conversation.last_message_at = 1, now
                message = stage(Message(conversation_id=conversation.id, seq=1, author="resident",
                                        direction="inbound", body=body, internal=False,
                                        client_id=f"start-{conversation.id}", created_at=now), flush=False)
                send_after_commit(message_stored, message_id=message.id, conversation_id=conversation.id,
                                  channel=CHANNEL, author="resident", internal=False, source=CHANNEL)
            made.append((n, conversation))
        db.session.flush()
    for n, conversation in made:
        results[n] = {"conversation_id": conversation.id, "token": conversation.token}
    return results


def conversation_by_token(token) -> Conversation:
    """Return the webchat conversation a resident's token opens, or refuse."""
    if not isinstance(token, str) or not 10 <= len(token) <= 64:
        raise ValidationFailed("token is required", {"token": ["the token start gave"]})
    conversation = db.session.scalar(select(Conversation).where(Conversation.token == token))
    if conversation is None or conversation.chat is None:
        raise NotFound("No chat with that token")
    return conversation


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
        data = serialise_message(message, author_name=getattr(user, "name", None))
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
    data = {"id": message_id, "seq": seq, "author": author, "body": body, "at": now.isoformat(),
            "client_id": client_id}
    if internal:
        data["internal"] = True
    if author_name:
        data["author_name"] = author_name
    message_stored.send(None, message_id=message_id, conversation_id=conversation_id, channel=CHANNEL,
                        author=author, internal=internal, source=CHANNEL)
    return data, holder_id


def held_chats(user_ids) -> list[Conversation]:
    """Return the open chats these agents hold, oldest first."""
    if not user_ids:
        return []
    return list(db.session.scalars(select(Conversation).where(
        Conversation.channel == CHANNEL, Conversation.assignee_id.in_(list(user_ids)),
        Conversation.status.in_(HELD_STATES)).order_by(Conversation.id)))


def chats_by_id(conversation_ids) -> list[Conversation]:
    """Return these webchat conversations (with their chat sessions)."""
    if not conversation_ids:
        return []
    chats = list(db.session.scalars(select(Conversation).where(
        Conversation.channel == CHANNEL, Conversation.id.in_(list(conversation_ids)))))
    load_related(chats)
    return chats


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


def serialise_message(message: Message, conversation_id: Optional[int] = None, author_name=None) -> dict:
    """Return the wire form of a message."""
    data = {"id": message.id, "seq": message.seq, "author": message.author, "body": message.body,
            "at": message.created_at.isoformat(), "client_id": message.client_id}
    if message.internal:
        data["internal"] = True
    if message.author == "agent":
        name = author_name or (message.author_user.name if message.author_user is not None else None)
        if name:
            data["author_name"] = name
    if conversation_id is not None:
        data["conversation_id"] = conversation_id
    return data


# ---- queue, presence, assignment ---------------------------------------------------------------

def waiting_chats(lock: bool = False) -> list[Conversation]:
    """Return queued chats in the order they will be served: put-back first, then oldest.

    With lock (the assigner, PostgreSQL), the rows are locked for this transaction and any a
    stuck transaction holds are skipped: they wait for the next pass instead of stalling it.
    """
    query = (select(Conversation).join(ChatSession).options(contains_eager(Conversation.chat))
             .where(Conversation.channel == CHANNEL, Conversation.status == "queued")
             .order_by(ChatSession.priority.desc(), ChatSession.queued_at, Conversation.id))
    if lock and db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Conversation)
    return list(db.session.scalars(query))


def load_related(conversations) -> list:
    """Load the customers, queues and cases of these chats in one query each, not one per chat.

    Many-to-one lazy loads then find them in the session's identity map, which holds objects
    weakly: keep the returned list while reading the relationships.
    """
    loaded = []
    for model, key in ((Customer, "customer_id"), (Queue, "queue_id"), (Case, "case_id")):
        ids = {getattr(c, key) for c in conversations} - {None}
        if ids:
            loaded.extend(db.session.scalars(select(model).where(model.id.in_(ids))))
    return loaded


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


def queue_position(conversation: Conversation) -> Optional[int]:
    """Return a queued chat's 1-based place in waiting_chats() order with one COUNT, not by loading the queue."""
    chat = conversation.chat
    if conversation.status != "queued" or chat is None:
        return None
    ahead = or_(ChatSession.priority > chat.priority,
                and_(ChatSession.priority == chat.priority,
                     or_(ChatSession.queued_at < chat.queued_at,
                         and_(ChatSession.queued_at == chat.queued_at, Conversation.id < conversation.id))))
    return 1 + db.session.scalar(
        select(func.count()).select_from(ChatSession).join(Conversation)
        .where(Conversation.channel == CHANNEL, Conversation.status == "queued", ahead))


def queue_outlook() -> tuple[float, bool]:
    """Return (estimated seconds of wait per queue place, whether webchat is open now)."""
    recent = db.session.execute(
        select(ChatSession.assigned_at, Conversation.closed_at).join(Conversation)
        .where(Conversation.channel == CHANNEL, Conversation.closed_at.is_not(None),
               ChatSession.assigned_at.is_not(None))
        .order_by(Conversation.closed_at.desc()).limit(50)).all()
    handle = [(closed - assigned).total_seconds() for assigned, closed in recent if closed > assigned]
    average = sum(handle) / len(handle) if handle else 300.0
    slots = sum(capacity for _, _, capacity in available_agents()) or 1
    return average / slots, is_open()


def set_presence(user: User, status: str) -> AgentPresence:
    """Set an agent's presence (available, busy, away, offline)."""
    presence = db.session.get(AgentPresence, user.id)
    if presence is None:
        presence = AgentPresence(user_id=user.id, status=status, since=utcnow())
        db.session.add(presence)
    elif presence.status != status:
        presence.status = status
        presence.since = utcnow()
    db.session.flush()
    return presence


def socket_stale_after() -> timedelta:
    """Return how old a socket's heartbeat may be before its process counts as dead (two missed beats)."""
    return timedelta(seconds=2 * cfg("WEBCHAT_HEARTBEAT_SECONDS") + 1)


def add_agent_socket(sid: str, user: User, server_id: str) -> None:
    """Record a live /agent connection; an agent coming back from offline is available again."""
    db.session.merge(AgentSocket(sid=sid, user_id=user.id, server_id=server_id, seen_at=utcnow()))
    presence = db.session.get(AgentPresence, user.id)
    if presence is None or presence.status == "offline":
        set_presence(user, "available")
    db.session.flush()


def remove_agent_socket(sid: str, last_seen: Optional[datetime] = None) -> Optional[int]:
    """Forget a connection; the agent goes offline when it was their last. Returns the user id.

    `last_seen` (a dead process's socket) dates the offline from its last heartbeat, so the
    grace period runs from when the agent was last known there, not from when we noticed.
    """
    row = db.session.get(AgentSocket, sid)
    if row is None:
        return None
    user_id = row.user_id
    db.session.delete(row)
    db.session.flush()
    if not db.session.scalar(select(func.count()).select_from(AgentSocket).where(AgentSocket.user_id == user_id)):
        presence = set_presence(row.user, "offline")
        if last_seen is not None and presence.since > last_seen:
            presence.since = last_seen
    return user_id


def heartbeat(sids) -> None:
    """Refresh the sockets this process holds."""
    if sids:
        db.session.execute(update(AgentSocket).where(AgentSocket.sid.in_(list(sids)))
                           .values(seen_at=utcnow()).execution_options(synchronize_session=False))


def expire_dead_sockets(now: datetime) -> None:
    """Drop sockets of processes that stopped beating; their agents go offline from then."""
    stale = db.session.scalars(select(AgentSocket).where(AgentSocket.seen_at < now - socket_stale_after())).all()
    for row in stale:
        remove_agent_socket(row.sid, last_seen=row.seen_at)


def agent_loads(user_ids=None) -> dict[int, tuple[int, Optional[datetime]]]:
    """Return {user_id: (chats held, last assignment time)}."""
    query = (select(Conversation.assignee_id, func.count(), func.max(ChatSession.assigned_at))
             .join(ChatSession).where(Conversation.channel == CHANNEL, Conversation.status.in_(HELD_STATES),
                                      Conversation.assignee_id.is_not(None))
             .group_by(Conversation.assignee_id))
    if user_ids is not None:
        query = query.where(Conversation.assignee_id.in_(list(user_ids)))
    return {uid: (count, last) for uid, count, last in db.session.execute(query)}


def available_agents() -> list[tuple[User, int, int]]:
    """Return (agent, load, capacity) for agents available, connected and active."""
    connected = select(AgentSocket.user_id)
    agents = db.session.scalars(
        select(User).join(AgentPresence, AgentPresence.user_id == User.id)
        .where(AgentPresence.status == "available", User.active.is_(True),
               User.role.in_(CHAT_HOLDERS_SQL), User.id.in_(connected))).all()
    loads = agent_loads([a.id for a in agents])
    return [(a, loads.get(a.id, (0, None))[0], a.chat_capacity or 0) for a in agents]


def lock_assignment(wait: bool = True) -> bool:
    """Serialise assignment across processes (PostgreSQL); SQLite serialises writers anyway.

    With wait=False, say False at once when another transaction is assigning: it will see
    this chat too, or the sweeper's next turn will. Waiting would pin a pooled connection
    per start while the queue is busy.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return True
    if wait:
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ASSIGN_LOCK_KEY})
        return True
    return bool(db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ASSIGN_LOCK_KEY}))


def assign(conversation: Conversation, agent: User, now: Optional[datetime] = None) -> None:
    """Give a chat to an agent (flushed by the caller, so a batch is one round trip)."""
    conversation.status = "assigned"
    conversation.assignee_id = agent.id
    conversation.chat.assigned_at = now or utcnow()
    conversation.chat.first_assigned_at = conversation.chat.first_assigned_at or conversation.chat.assigned_at
    conversation.chat.priority = 0


# ---- skills: chat topics agents handle ------------------------------------------------------------

def clean_topic(raw) -> str:
    """Return a topic code as chats carry it (Conversation.topic): 1-60 letters, digits, _ or -."""
    if not isinstance(raw, str) or not 0 < len(raw.strip()) <= 60 \
            or not all(ch.isalnum() or ch in "_-" for ch in raw.strip()):
        raise ValidationFailed("A skill is a topic code", {"skills": ["topic codes: letters, digits, _ or -"]})
    return raw.strip()


def skills_of(user: User) -> list[str]:
    """Return the topics an agent handles, sorted."""
    return sorted(db.session.scalars(select(AgentSkill.topic).where(AgentSkill.user_id == user.id)))


def set_skills(user: User, topics) -> list[str]:
    """Replace the topics an agent handles (an empty list: they take any chat)."""
    if not isinstance(topics, (list, tuple, set)) or len(topics) > 50:
        raise ValidationFailed("skills must be a list", {"skills": ["a list of at most 50 topic codes"]})
    wanted = {clean_topic(t) for t in topics}
    have = {s.topic: s for s in db.session.scalars(select(AgentSkill).where(AgentSkill.user_id == user.id))}
    for topic in set(have) - wanted:
        db.session.delete(have[topic])
    db.session.add_all([AgentSkill(user_id=user.id, topic=t) for t in wanted - set(have)])
    db.session.flush()
    return sorted(wanted)


def staff_skills() -> dict[int, set[str]]:
    """Return {user id: topics} for active chat staff with skills (one query)."""
    skills: dict[int, set[str]] = {}
    for user_id, topic in db.session.execute(
            select(AgentSkill.user_id, AgentSkill.topic).join(User, User.id == AgentSkill.user_id)
            .where(User.active.is_(True), User.role.in_(CHAT_HOLDERS_SQL))):
        skills.setdefault(user_id, set()).add(topic)
    return skills


def widened(chat: ChatSession, now: datetime) -> bool:
    """Say whether a chat has waited long enough for a skilled topic to go to any agent."""
    after = cfg("WEBCHAT_SKILL_FALLBACK_SECONDS")
    return after > 0 and chat.queued_at is not None and (now - chat.queued_at).total_seconds() >= after


@dataclass
class AssignmentPass:
    """What one pass of assignment did: chats given out, and those still waiting in serving order."""

    made: list = field(default_factory=list)
    waiting: list = field(default_factory=list)
    # The agents it considered: held so that reading a chat's assignee finds them loaded.
    agents: dict = field(default_factory=dict)


def assign_waiting(wait: bool = True) -> Optional[AssignmentPass]:
    """Assign queued chats FIFO, each to the available agent with spare capacity and least load.

    Skills: when some active agent has a chat's topic as a skill, the chat goes only to agents
    with that skill, until it has waited WEBCHAT_SKILL_FALLBACK_SECONDS (then to anyone,
    skilled agents first); a topic nobody has as a skill, and a chat without a topic, go to
    anyone. A chat no eligible agent can take now does not hold up younger chats others can.
    Returns None when wait=False and another process or greenlet is assigning right now.
    """
    if not lock_assignment(wait):
        return None
    waiting = waiting_chats(lock=True)
    result = AssignmentPass(waiting=waiting)
    if not waiting:
        return result
    agents = result.agents = {a.id: a for a, _, _ in available_agents()}
    if not agents:
        return result
    loads = agent_loads(agents)
    state = {uid: [loads.get(uid, (0, None))[0], loads.get(uid, (0, None))[1]] for uid in agents}
    skills = staff_skills()
    skilled_topics = set().union(*skills.values()) if skills else set()
    now = utcnow()
    epoch = datetime.min.replace(tzinfo=now.tzinfo)
    still = []
    for index, conversation in enumerate(waiting):
        free = [uid for uid in agents if state[uid][0] < (agents[uid].chat_capacity or 0)]
        if not free:
            still.extend(waiting[index:])
            break
        topic = conversation.topic
        if topic in skilled_topics:
            skilled = [uid for uid in free if topic in skills.get(uid, ())]
            if skilled:
                free = skilled
            elif not widened(conversation.chat, now):
                still.append(conversation)  # waits for someone with the skill
                continue
        # Least load first; among equals the one who has waited longest since their last chat.
        chosen = min(free, key=lambda uid: (state[uid][0], state[uid][1] or epoch, uid))
        assign(conversation, agents[chosen], now)
        state[chosen][0] += 1
        state[chosen][1] = now
        result.made.append(conversation)
    result.waiting = still
    db.session.flush()
    return result


def accept(conversation_id, agent: User) -> tuple[Conversation, bool]:
    """Let an agent pick a queued chat (or re-open one they hold); says whether it is newly theirs."""
    conversation = chat_or_404(conversation_id)
    if conversation.assignee_id == agent.id and conversation.status in HELD_STATES:
        return conversation, False
    if conversation.status != "queued":
        raise Conflict("That chat is no longer waiting", code="not_waiting")
    lock_assignment()
    db.session.refresh(conversation)
    if conversation.status != "queued":
        raise Conflict("That chat is no longer waiting", code="not_waiting")
    load = agent_loads([agent.id]).get(agent.id, (0, None))[0]
    if load >= (agent.chat_capacity or 0):
        raise Conflict("You are at your chat capacity", code="at_capacity")
    assign(conversation, agent)
    db.session.flush()
    return conversation, True


def chat_or_404(conversation_id) -> Conversation:
    """Return the webchat conversation with this id or refuse."""
    conversation_id = clean_int(conversation_id, "conversation_id", 1)
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or conversation.channel != CHANNEL or conversation.chat is None:
        raise NotFound("No such chat")
    return conversation


def held_by(conversation_id, agent: User) -> Conversation:
    """Return a chat the agent holds (supervisors and admins may act on any)."""
    conversation = chat_or_404(conversation_id)
    if conversation.assignee_id != agent.id and not agent.has_role(*SUPERVISORS):
        raise DomainError("That chat is not yours", code="not_yours", status=403)
    if conversation.status not in HELD_STATES:
        raise Conflict("That chat is not open", code="not_open")
    return conversation


def requeue(conversation: Conversation, note: str, queue: Optional[Queue] = None) -> Message:
    """Put a chat back at the head of its (or another) queue; return the note told to the resident."""
    conversation.status = "queued"
    conversation.assignee_id = None
    conversation.chat.priority = 1
    if queue is not None:
        conversation.queue_id = queue.id
    return system_message(conversation, note)


def transfer(conversation: Conversation, actor: User, queue_code=None, agent_id=None, note=None) -> Optional[User]:
    """Transfer a chat to another agent or queue, with an internal note; returns the new agent."""
    note = clean_text(note, "note", cfg("WEBCHAT_MAX_MESSAGE_CHARS"), required=False)
    if (queue_code is None) == (agent_id is None):
        raise ValidationFailed("Transfer to a queue or to an agent", {"queue": ["give queue or agent_id"]})
    if note:
        store_message(conversation.id, "agent", f"Transfer note: {note}", user=actor, internal=True)
    if agent_id is not None:
        target = db.session.get(User, clean_int(agent_id, "agent_id", 1))
        if target is None or not target.active or not target.has_role(*CHAT_ROLES):
            raise ValidationFailed("No such agent", {"agent_id": ["not an active agent"]})
        if target.id == conversation.assignee_id:
            raise Conflict("That agent already has this chat", code="same_agent")
        conversation.assignee_id = target.id
        conversation.chat.assigned_at = utcnow()
        system_message(conversation, f"You are being transferred to {target.name}.")
        return target
    if not isinstance(queue_code, str):
        raise ValidationFailed("queue must be a queue code", {"queue": ["a webchat queue code"]})
    queue = db.session.scalar(select(Queue).where(Queue.code == queue_code, Queue.channel == CHANNEL))
    if queue is None:
        raise ValidationFailed("No such webchat queue", {"queue": [f"no webchat queue {queue_code!r}"]})
    requeue(conversation, "You are being transferred; the next adviser will be with you shortly.", queue)
    return None


def requeue_from_absent_agents(now: datetime) -> list[tuple[Conversation, int, Message]]:
    """Put back at the head the open chats of agents away or disconnected beyond the grace period.

    Returns (chat, the agent it left, the note to the resident) for each.
    """
    cutoff = now - timedelta(seconds=cfg("WEBCHAT_GRACE_SECONDS"))
    absent = select(AgentPresence.user_id).where(AgentPresence.status.in_(("away", "offline")),
                                                 AgentPresence.since <= cutoff)
    chats = db.session.scalars(select(Conversation).where(
        Conversation.channel == CHANNEL, Conversation.status == "assigned",
        Conversation.assignee_id.in_(absent))).all()
    moved = []
    for conversation in chats:
        agent_id = conversation.assignee_id
        note = requeue(conversation, "Your adviser had to leave; you are back at the front of the queue.")
        moved.append((conversation, agent_id, note))
    return moved


def offer_offline(now: datetime) -> list[Conversation]:
    """Mark chats waiting beyond the no-agent limit as offered "leave a message"."""
    cutoff = now - timedelta(seconds=cfg("WEBCHAT_NO_AGENT_SECONDS"))
    chats = db.session.scalars(select(Conversation).join(ChatSession).where(
        Conversation.channel == CHANNEL, Conversation.status == "queued",
        ChatSession.queued_at <= cutoff, ChatSession.offline_offered_at.is_(None))).all()
    for conversation in chats:
        conversation.chat.offline_offered_at = now
    return list(chats)


# ---- endings ---------------------------------------------------------------------------------

def offline_category(topic: Optional[str]) -> Optional[Category]:
    """Return the category a left message is filed under: the topic's, its service's first, or the default."""
    active = select(Category).where(Category.active.is_(True))
    if topic:
        category = db.session.scalar(active.where(Category.code == topic))
        if category is None:
            category = db.session.scalar(active.join(Category.service).where(Service.code == topic)
                                         .order_by(Category.id))
        if category is not None:
            return category
    return db.session.scalar(active.where(Category.code == cfg("WEBCHAT_OFFLINE_CATEGORY")))


def leave_message(conversation: Conversation, body, email=None) -> str:
    """Turn a chat nobody could take into a left message: a case, or an email conversation.

    The same conversation carries on (its messages stay), with a reference for the resident.
    """
    if conversation.status not in LIVE_STATES:
        raise Conflict("This chat has ended", code="ended")
    body = clean_text(body, "message", cfg("WEBCHAT_MAX_MESSAGE_CHARS"))
    email = clean_text(email, "email", 254, required=False) or conversation.chat.email
    if email and email != conversation.chat.email:
        resolve_customer(conversation.chat.name, email, None, source="chat")
        conversation.chat.email = email
    store_message(conversation.id, "resident", body)
    transcript = "\n".join(f"{m.author}: {m.body}" for m in messages_after(conversation.id, 0))
    category = offline_category(conversation.topic)
    now = utcnow()
    contact = record_contact(conversation.customer, CHANNEL, summary="Message left on webchat",
                             notes=body, category=category.code if category else conversation.topic,
                             outcome="case_raised" if category else "pending",
                             started_at=conversation.created_at, ended_at=now, conversation=conversation)
    conversation.assignee_id = None
    conversation.chat.ended_at = now
    if category is not None:
        case = open_case(conversation.customer, category.service.code, category.code,
                         f"Webchat message: {body[:80]}", transcript, contact=contact, source_channel=CHANNEL)
        set_case_contact(case, email, conversation.chat.phone)
        conversation.case_id = case.id
        conversation.status = "closed"
        conversation.closed_at = now
        reference = case.reference
    else:
        # No service to route to: the conversation becomes an email thread staff answer later.
        conversation.channel = "email" if email else CHANNEL
        conversation.status = "open"
        reference = f"WEB-{conversation.id:06d}"
    conversation.chat.offline_reference = reference
    system_message(conversation, f"Thank you. Your message has been passed on; your reference is {reference}.")
    return reference


def end_by_resident(conversation: Conversation) -> None:
    """The resident ends the chat; unanswered ones are recorded as abandoned at once."""
    if conversation.status not in LIVE_STATES:
        return
    now = utcnow()
    conversation.chat.ended_at = now
    system_message(conversation, "The resident ended the chat.")
    if conversation.status == "queued":
        conversation.status = "closed"
        conversation.closed_at = now
        record_contact(conversation.customer, CHANNEL, summary="Webchat abandoned in the queue",
                       outcome="abandoned", started_at=conversation.created_at, ended_at=now,
                       conversation=conversation, category=conversation.topic)
    else:
        conversation.status = "ended"  # the agent still closes it with an outcome


def close_chat(conversation: Conversation, agent: User, outcome, summary=None):
    """Close a chat with an outcome: one webchat Contact on the timeline, transcript in its conversation."""
    if outcome not in OUTCOMES:
        raise ValidationFailed("Unknown outcome", {"outcome": [f"must be one of {', '.join(OUTCOMES)}"]})
    summary = clean_text(summary, "summary", 300, required=False)
    now = utcnow()
    was_live = conversation.status == "assigned"
    if was_live:
        system_message(conversation, "The adviser closed the chat. Thank you for contacting us.")
    conversation.status = "closed"
    conversation.closed_at = now
    conversation.chat.ended_at = conversation.chat.ended_at or now
    return record_contact(
        conversation.customer, CHANNEL, summary=summary or f"Webchat: {conversation.topic or 'general enquiry'}",
        category=conversation.topic, outcome=outcome, agent=agent,
        started_at=conversation.chat.first_assigned_at or conversation.chat.assigned_at or conversation.created_at,
        ended_at=now,
        conversation=conversation, case=conversation.case), was_live


def raise_case(conversation: Conversation, agent: User, payload):
    """Raise a case for the chat's customer with the cases service."""
    if not isinstance(payload, dict):
        raise ValidationFailed("raise_case needs an object", {"payload": ["must be an object"]})
    transcript = "\n".join(f"{m.author}: {m.body}" for m in messages_after(conversation.id, 0))
    description = clean_text(payload.get("description"), "description", 5000, required=False) or transcript
    case = open_case(conversation.customer, payload.get("service") or "", payload.get("category") or "",
                     clean_text(payload.get("title"), "title", 200), description,
                     priority=payload.get("priority") or "normal", actor=agent, source_channel=CHANNEL)
    set_case_contact(case, conversation.chat.email, conversation.chat.phone)
    conversation.case_id = case.id
    return case


def rate(conversation: Conversation, rating) -> None:
    """Record the resident's satisfaction (1-5)."""
    rating = clean_int(rating, "rating", 1)
    if rating > 5:
        raise ValidationFailed("rating is 1 to 5", {"rating": ["1 to 5"]})
    conversation.chat.rating = rating


def link_customer(conversation: Conversation, customer_id, actor: Optional[User] = None) -> None:
    """Point the chat at the right customer when identity resolution picked another (one the actor may read)."""
    from ..customers.identity import live_customer
    from ..models import Customer

    customer = live_customer(db.session.get(Customer, clean_int(customer_id, "customer_id", 1)))
    if customer is None:
        raise NotFound("No such customer")
    if actor is not None:
        visibility.check_customer(actor, customer)  # linking must not be a way into a restricted record
    conversation.customer_id = customer.id


def clean_presence(status) -> str:
    """Return a presence an agent may choose."""
    if status not in PRESENCE_CHOICES:
        raise ValidationFailed("Unknown presence", {"status": [f"one of {', '.join(PRESENCE_CHOICES)}"]})
    return status

