"""The queue and who takes it: presence, agents' sockets and skills, assignment, accept, transfer. Never commits.

All queue state lives in the database (conversations + chat_sessions + agent_presence +
agent_sockets + agent_skills), so any number of server processes share one queue. Assignment
takes a PostgreSQL advisory lock so two processes never hand out the same agent's last slot.
"""
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Optional

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import contains_eager

from ..auth.roles import CHAT_HOLDERS_SQL, CHAT_STAFF
from ..errors import Conflict, ValidationFailed
from ..extensions import db
from ..models import AgentPresence, AgentSkill, AgentSocket, ChatSession, Conversation, Message, Queue, User, utcnow
from .hours import is_open
from .messages import store_message, system_message
from .rules import CHANNEL, HELD_STATES, cfg, chat_or_404, clean_int, clean_text


ASSIGN_LOCK_KEY = 5_054_801  # arbitrary: the PostgreSQL advisory lock of chat assignment
PRESENCE_CHOICES = ("available", "busy", "away")


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


def _held_by_agent():
    """Return the query of (user_id, load, last): the open chats each agent holds, and when they last got one."""
    return (select(Conversation.assignee_id.label("user_id"), func.count().label("load"),
                   func.max(ChatSession.assigned_at).label("last"))
            .join(ChatSession).where(Conversation.channel == CHANNEL, Conversation.status.in_(HELD_STATES),
                                     Conversation.assignee_id.is_not(None))
            .group_by(Conversation.assignee_id))


def agent_loads(user_ids=None) -> dict[int, tuple[int, Optional[datetime]]]:
    """Return {user_id: (chats held, last assignment time)}."""
    query = _held_by_agent()
    if user_ids is not None:
        query = query.where(Conversation.assignee_id.in_(list(user_ids)))
    return {uid: (count, last) for uid, count, last in db.session.execute(query)}


def available_agents_with_loads() -> list[tuple[User, int, Optional[datetime]]]:
    """Return (agent, chats held, last assignment time) for agents available, connected and active, in one query."""
    held = _held_by_agent().subquery()
    rows = db.session.execute(
        select(User, held.c.load, held.c.last).join(AgentPresence, AgentPresence.user_id == User.id)
        .outerjoin(held, held.c.user_id == User.id)
        .where(AgentPresence.status == "available", User.active.is_(True),
               User.role.in_(CHAT_HOLDERS_SQL), User.id.in_(select(AgentSocket.user_id))))
    return [(agent, load or 0, last) for agent, load, last in rows]


def available_agents() -> list[tuple[User, int, int]]:
    """Return (agent, load, capacity) for agents available, connected and active."""
    return [(agent, load, agent.chat_capacity or 0) for agent, load, _ in available_agents_with_loads()]


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
    available = available_agents_with_loads()
    if not available:
        return result
    agents = result.agents = {agent.id: agent for agent, _, _ in available}
    state = {agent.id: [load, last] for agent, load, last in available}  # updated as the pass assigns
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


def requeue(conversation: Conversation, note: str, queue: Optional[Queue] = None) -> Message:
    """Put a chat back at the head of its (or another) queue; return the note told to the resident."""
    conversation.status = "queued"
    conversation.assignee_id = None
    conversation.chat.priority = 1
    if queue is not None:
        conversation.queue_id = queue.id
    return system_message(conversation, note)


def put_back(conversation: Conversation, queue: Optional[Queue] = None, now: Optional[datetime] = None) -> None:
    """Put a chat at the head of its (or another) queue as if just arrived, telling nobody (a supervisor's move)."""
    now = now or utcnow()
    conversation.status = "queued"
    conversation.assignee_id = None
    if queue is not None:
        conversation.queue_id = queue.id
    chat = conversation.chat
    chat.queued_at, chat.priority, chat.assigned_at = now, 1, None


def transfer(conversation: Conversation, actor: User, queue_code=None, agent_id=None, note=None) -> Optional[User]:
    """Transfer a chat to another agent or queue, with an internal note; returns the new agent."""
    note = clean_text(note, "note", cfg("WEBCHAT_MAX_MESSAGE_CHARS"), required=False)
    if (queue_code is None) == (agent_id is None):
        raise ValidationFailed("Transfer to a queue or to an agent", {"queue": ["give queue or agent_id"]})
    if note:
        store_message(conversation.id, "agent", f"Transfer note: {note}", user=actor, internal=True)
    if agent_id is not None:
        target = db.session.get(User, clean_int(agent_id, "agent_id", 1))
        if target is None or not target.active or not target.has_role(*CHAT_STAFF):
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


def clean_presence(status) -> str:
    """Return a presence an agent may choose."""
    if status not in PRESENCE_CHOICES:
        raise ValidationFailed("Unknown presence", {"status": [f"one of {', '.join(PRESENCE_CHOICES)}"]})
    return status
