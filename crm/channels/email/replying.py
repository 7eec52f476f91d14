"""Reply helpers of the email console: who else is replying, canned replies with placeholders, reply targets.

A marker says "this person is writing a reply to this conversation" and expires unless the
browser renews it, so a closed tab stops warning colleagues within REPLY_MARKER_SECONDS.
"""
from datetime import timedelta
from typing import Optional

from flask import current_app
from sqlalchemy import delete, func, or_, select, type_coerce

from ...cases.sla import WorkingCalendar
from ...extensions import db
from ...models import CannedReply, Conversation, Message, ReplyMarker, User, UTCDateTime, utcnow

REPLY_MARKER_SECONDS = 60
DEFAULT_REPLY_TARGET_HOURS = 16  # two working days
PLACEHOLDERS = ("resident_name", "case_reference", "agent_name")


def mark_replying(conversation: Conversation, user: User) -> None:
    """Say that the user is writing a reply now (renews their marker)."""
    expires = utcnow() + timedelta(seconds=REPLY_MARKER_SECONDS)
    marker = db.session.scalar(select(ReplyMarker).where(ReplyMarker.conversation_id == conversation.id,
                                                         ReplyMarker.user_id == user.id))
    if marker is None:
        db.session.add(ReplyMarker(conversation_id=conversation.id, user_id=user.id, expires_at=expires))
    else:
        marker.expires_at = expires


def clear_replying(conversation: Conversation, user: User) -> None:
    """Drop the user's marker (they sent, or left the reply)."""
    db.session.execute(delete(ReplyMarker).where(ReplyMarker.conversation_id == conversation.id,
                                                 ReplyMarker.user_id == user.id))


def others_replying(conversation: Conversation, user: User) -> list[str]:
    """Return the names of colleagues whose reply to this conversation is live now."""
    return list(db.session.scalars(select(User.name).join(ReplyMarker, ReplyMarker.user_id == User.id).where(
        ReplyMarker.conversation_id == conversation.id, ReplyMarker.user_id != user.id,
        ReplyMarker.expires_at > utcnow()).order_by(User.name)))


def canned_replies(channel: str) -> list[CannedReply]:
    """Return the canned replies written for this channel or for any channel."""
    return db.session.scalars(select(CannedReply).where(
        or_(CannedReply.channel.is_(None), CannedReply.channel == channel)).order_by(CannedReply.title)).all()


def placeholder_values(conversation: Conversation, agent: User) -> dict:
    """Return what each placeholder stands for in this conversation."""
    from ...customers.identity import live_customer  # noqa: PLC0415

    customer = live_customer(conversation.customer)
    return {"resident_name": customer.name if customer else "", "agent_name": agent.name,
            "case_reference": conversation.case.reference if conversation.case else ""}


def fill_placeholders(text: str, values: dict) -> str:
    """Put the values in for {resident_name}, {case_reference} and {agent_name}; other braces stay as typed."""
    for name in PLACEHOLDERS:
        text = text.replace("{" + name + "}", values.get(name) or "")
    return text


def reply_target_hours() -> float:
    """Return the working hours within which an email should be answered (config EMAIL_REPLY_TARGET_HOURS)."""
    return float(current_app.config.get("EMAIL_REPLY_TARGET_HOURS") or DEFAULT_REPLY_TARGET_HOURS)


def waiting_since(conversation_ids) -> dict:
    """Return, per conversation, when the oldest resident message not yet answered by staff arrived."""
    ids = list(conversation_ids)
    if not ids:
        return {}
    last_answer = (select(Message.conversation_id, func.max(Message.seq).label("seq"))
                   .where(Message.conversation_id.in_(ids), Message.author == "agent", Message.internal.is_(False))
                   .group_by(Message.conversation_id).subquery())
    rows = db.session.execute(
        select(Message.conversation_id, type_coerce(func.min(Message.created_at), UTCDateTime))
        .outerjoin(last_answer, last_answer.c.conversation_id == Message.conversation_id)
        .where(Message.conversation_id.in_(ids), Message.author == "resident",
               Message.seq > func.coalesce(last_answer.c.seq, 0))
        .group_by(Message.conversation_id)).all()
    return {cid: since for cid, since in rows}


def reply_due(since) -> Optional[object]:
    """Return when a reply to a message that arrived at `since` is due (working hours)."""
    if since is None:
        return None
    return WorkingCalendar.from_config().add_working_hours(since, reply_target_hours())
