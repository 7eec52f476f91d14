"""Live figures for supervisors: per queue, per channel and per agent, computed from the data.

What each figure counts (the dashboard, `GET /api/v1/queues` and the `stats` push share this):

- Conversations (email threads, chats) are *waiting* while unassigned and queued or open, and
  *in progress* while assigned and not finished. A chat waits from ChatSession.queued_at (so a
  transferred chat restarts its wait); an email waits from its last inbound message.
- Email waiting longer than the queue's `target_response_minutes` is *over target*.
- Cases on a queue are waiting while unassigned, in progress once assigned, until resolved or
  closed. *At risk*: resolution due within CASE_SLA_AT_RISK_HOURS of working time (the cases
  area's margin); *breached*: due time passed.
- Agents available: presence "available", and for webchat queues with a free chat slot.
"""
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Optional
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, case, func, select, type_coerce

from ..auth.roles import DESK_STAFF_SQL
from ..conversations import lifecycle as conversation_lifecycle
from ..extensions import db
from ..models import (
    AgentPresence, AgentSkill, AgentSocket, Banner, Case, ChatSession, Contact, Conversation, Queue, User, UTCDateTime, utcnow,
)
from .schemas import BannerOut

FINISHED_CASE = ("resolved", "closed")
LOCAL_TZ = ZoneInfo("Europe/London")


def current_time() -> datetime:
    """Return now, or the fixed instant in CRM_FIXED_NOW (scripted test days and demos)."""
    fixed = current_app.config.get("CRM_FIXED_NOW")
    return fixed if fixed is not None else utcnow()


def start_of_local_day(now: datetime) -> datetime:
    """Return the instant the council's (Europe/London) day containing `now` began."""
    local = now.astimezone(LOCAL_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)


def _seconds(now: datetime, since: Optional[datetime]) -> int:
    return max(0, int((now - since).total_seconds())) if since else 0


def _waiting_since():
    """SQL: when a conversation started waiting (chats: queued_at; email: last inbound)."""
    return type_coerce(
        case(
            (Conversation.channel == "webchat",
             func.coalesce(ChatSession.queued_at, Conversation.created_at)),
            else_=func.coalesce(Conversation.last_message_at, Conversation.created_at),
        ),
        UTCDateTime,
    )


def _sla_threshold(now: datetime) -> datetime:
    """Return the due time before which an open case counts as at risk."""
    from ..cases.sla import at_risk_threshold

    return at_risk_threshold(now)


def _empty_queue_row(queue: Queue) -> dict:
    return {
        "id": queue.id,
        "code": queue.code,
        "name": queue.name,
        "channel": queue.channel,
        "service": queue.service.code if queue.service else None,
        "target_response_minutes": queue.target_response_minutes,
        "waiting": 0,
        "oldest_wait_seconds": 0,
        "in_progress": 0,
        "over_target": 0,
        "agents_available": 0,
        "sla_at_risk": 0,
        "sla_breached": 0,
    }


def _conversation_counts(now: datetime, rows: dict) -> None:
    """Add waiting, in-progress, oldest wait and over-target email to the queue rows."""
    since = _waiting_since()
    unassigned = Conversation.assignee_id.is_(None)
    waiting = and_(unassigned, Conversation.status.in_(conversation_lifecycle.UNASSIGNED))
    stmt = (
        select(
            Conversation.queue_id,
            func.sum(case((waiting, 1), else_=0)),
            func.sum(case((Conversation.assignee_id.is_not(None), 1), else_=0)),
            type_coerce(func.min(case((waiting, since))), UTCDateTime),
        )
        .outerjoin(ChatSession, ChatSession.conversation_id == Conversation.id)
        .where(Conversation.status.in_(conversation_lifecycle.ACTIVE), Conversation.queue_id.is_not(None))
        .group_by(Conversation.queue_id)
    )
    for queue_id, waiting_count, in_progress, oldest in db.session.execute(stmt):
        row = rows.get(queue_id)
        if row is None:
            continue
        row["waiting"] += int(waiting_count or 0)
        row["in_progress"] += int(in_progress or 0)
        row["oldest_wait_seconds"] = max(row["oldest_wait_seconds"], _seconds(now, oldest))
    for row in rows.values():
        if row["channel"] != "email" or not row["waiting"]:
            continue
        cutoff = now - timedelta(minutes=row["target_response_minutes"])
        row["over_target"] = db.session.scalar(
            select(func.count())
            .select_from(Conversation)
            .outerjoin(ChatSession, ChatSession.conversation_id == Conversation.id)
            .where(Conversation.queue_id == row["id"], waiting, since < cutoff)
        ) or 0


def _case_counts(now: datetime, rows: dict) -> None:
    """Add open cases (waiting, in progress) and SLA at risk or breached to the queue rows."""
    threshold = _sla_threshold(now)
    unassigned = Case.assignee_id.is_(None)
    stmt = (
        select(
            Case.queue_id,
            func.sum(case((unassigned, 1), else_=0)),
            func.sum(case((unassigned, 0), else_=1)),
            type_coerce(func.min(case((unassigned, Case.created_at))), UTCDateTime),
            func.sum(case((and_(Case.sla_due_at > now, Case.sla_due_at <= threshold), 1), else_=0)),
            func.sum(case((Case.sla_due_at <= now, 1), else_=0)),
        )
        .where(Case.status.not_in(FINISHED_CASE), Case.merged_into_id.is_(None),
               Case.queue_id.is_not(None))
        .group_by(Case.queue_id)
    )
    for queue_id, waiting, in_progress, oldest, at_risk, breached in db.session.execute(stmt):
        row = rows.get(queue_id)
        if row is None:
            continue
        row["waiting"] += int(waiting or 0)
        row["in_progress"] += int(in_progress or 0)
        row["oldest_wait_seconds"] = max(row["oldest_wait_seconds"], _seconds(now, oldest))
        row["sla_at_risk"] += int(at_risk or 0)
        row["sla_breached"] += int(breached or 0)


def _work_in_hand() -> dict:
    """Return {user_id: {channel: conversations assigned and not finished}}."""
    held = defaultdict(dict)
    stmt = (
        select(Conversation.assignee_id, Conversation.channel, func.count())
        .where(Conversation.status.in_(conversation_lifecycle.ACTIVE), Conversation.assignee_id.is_not(None))
        .group_by(Conversation.assignee_id, Conversation.channel)
    )
    for user_id, channel, count in db.session.execute(stmt):
        held[user_id][channel] = count
    return held


def _available_agents(held: dict) -> list[tuple[User, bool]]:
    """Return (user, can take a chat now) for every active user whose presence is available.

    A chat can go to a user as webchat assigns it: a live /agent socket and a free chat slot.
    """
    users = db.session.scalars(
        select(User)
        .join(AgentPresence, AgentPresence.user_id == User.id)
        .where(AgentPresence.status == "available", User.active.is_(True))
    ).all()
    connected = set(db.session.scalars(select(AgentSocket.user_id).distinct()))
    return [(u, u.id in connected and held.get(u.id, {}).get("webchat", 0) < (u.chat_capacity or 0))
            for u in users]


def queue_figures(now: Optional[datetime] = None) -> list[dict]:
    """Return the live figures of every queue, ordered by channel then name."""
    now = now or current_time()
    queues = db.session.scalars(select(Queue).order_by(Queue.channel, Queue.name)).all()
    rows = {q.id: _empty_queue_row(q) for q in queues}
    _conversation_counts(now, rows)
    _case_counts(now, rows)
    available = _available_agents(_work_in_hand())
    for queue in queues:
        row = rows[queue.id]
        if queue.channel == "webchat":
            row["agents_available"] = sum(1 for _, free in available if free)
        elif queue.channel == "cases":
            row["agents_available"] = sum(1 for u, _ in available if u.service_id == queue.service_id)
        else:
            row["agents_available"] = len(available)
    return [rows[q.id] for q in queues]


def channel_figures(queues: list[dict]) -> list[dict]:
    """Sum the queue figures per channel (oldest wait is the longest of the channel)."""
    totals: dict[str, dict] = {}
    for row in queues:
        total = totals.setdefault(row["channel"], {
            "channel": row["channel"], "waiting": 0, "oldest_wait_seconds": 0, "in_progress": 0,
            "over_target": 0, "sla_at_risk": 0, "sla_breached": 0,
        })
        for key in ("waiting", "in_progress", "over_target", "sla_at_risk", "sla_breached"):
            total[key] += row[key]
        total["oldest_wait_seconds"] = max(total["oldest_wait_seconds"], row["oldest_wait_seconds"])
    return list(totals.values())


def agent_figures(now: Optional[datetime] = None) -> list[dict]:
    """Return every desk agent's presence, time in state, chats vs capacity and handle time today."""
    now = now or current_time()
    day_start = start_of_local_day(now)
    rows = db.session.execute(
        select(User, AgentPresence)
        .outerjoin(AgentPresence, AgentPresence.user_id == User.id)
        .where(User.active.is_(True), User.role.in_(DESK_STAFF_SQL))
        .order_by(User.name)
    ).all()
    held = _work_in_hand()
    skills = defaultdict(list)
    for user_id, topic in db.session.execute(select(AgentSkill.user_id, AgentSkill.topic).order_by(AgentSkill.topic)):
        skills[user_id].append(topic)
    handled = defaultdict(lambda: [0, 0])
    calls = db.session.execute(
        select(Contact.agent_id, Contact.started_at, Contact.ended_at)
        .where(Contact.occurred_at >= day_start, Contact.occurred_at <= now,
               Contact.agent_id.is_not(None))
    )
    for agent_id, started, ended in calls:
        handled[agent_id][0] += 1
        if started and ended:
            handled[agent_id][1] += max(0, int((min(ended, now) - started).total_seconds()))
    agents = []
    for user, presence in rows:
        status = presence.status if presence else "offline"
        since = presence.since if presence else None
        in_hand = held.get(user.id, {})
        agents.append({
            "id": user.id,
            "name": user.name,
            "role": user.role,
            "presence": status,
            "since": since.isoformat() if since else None,
            "seconds_in_state": _seconds(now, since),
            "chats_in_hand": in_hand.get("webchat", 0),
            "chat_capacity": user.chat_capacity,
            "chat_skills": skills.get(user.id, []),
            "emails_in_hand": in_hand.get("email", 0),
            "contacts_today": handled[user.id][0],
            "handle_seconds_today": handled[user.id][1],
        })
    return agents


def active_banners(now: Optional[datetime] = None, public_only: bool = False) -> list[Banner]:
    """Return the banners in force, newest first."""
    now = now or current_time()
    stmt = select(Banner).where(
        Banner.cleared_at.is_(None), (Banner.expires_at.is_(None)) | (Banner.expires_at > now)
    )
    if public_only:
        stmt = stmt.where(Banner.public.is_(True))
    return db.session.scalars(stmt.order_by(Banner.created_at.desc(), Banner.id.desc())).all()


def live_conversations(limit: int = 100) -> list[Conversation]:
    """Return the open chats and emails a supervisor may move, oldest first."""
    from sqlalchemy.orm import selectinload

    return db.session.scalars(
        select(Conversation)
        .where(Conversation.channel.in_(("webchat", "email")), Conversation.status.in_(conversation_lifecycle.ACTIVE))
        .options(selectinload(Conversation.assignee), selectinload(Conversation.queue))
        .order_by(Conversation.created_at, Conversation.id).limit(limit)
    ).all()


def movable_label(conversation: Conversation) -> str:
    """Return how the move form lists a conversation."""
    channel = {"webchat": "Webchat", "email": "Email"}.get(conversation.channel, conversation.channel)
    parts = [f"#{conversation.id} {channel}", conversation.status.replace("_", " "),
             conversation.assignee.name if conversation.assignee else "unassigned"]
    if conversation.queue:
        parts.append(conversation.queue.name)
    about = (conversation.subject or conversation.topic or "")[:60]
    if about:
        parts.append(about)
    return " · ".join(parts)


def dashboard_snapshot(now: Optional[datetime] = None) -> dict:
    """Return everything the live dashboard shows; `items` is exactly GET /queues' list."""
    now = now or current_time()
    queues = queue_figures(now)
    return {
        "generated_at": now.isoformat(),
        "items": queues,
        "channels": channel_figures(queues),
        "agents": agent_figures(now),
        "banners": BannerOut(many=True).dump(active_banners(now)),
        "movable": [{"id": c.id, "channel": c.channel, "label": movable_label(c)} for c in live_conversations()],
    }
