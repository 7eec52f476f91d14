"""What a supervisor does to run a shift; every action is audited. Services never commit."""
from dataclasses import dataclass
from datetime import datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Optional

from blinker import Namespace
from sqlalchemy import delete, select

from ..audit import audit
from ..conversations import service as conversations
from ..errors import NotFound, ValidationFailed
from ..extensions import db
from ..models import CHANNELS, Banner, ChannelCost, Conversation, OpeningHours, User, utcnow
from ..signals import send_after_commit

MAX_CHAT_CAPACITY = 10
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_signals = Namespace()
# Sent after commit when a banner is posted or cleared: payload banner_id, public.
banner_changed = _signals.signal("supervisor-banner-changed")


def _staff(user_id: int) -> User:
    return conversations.active_holder(user_id)


def set_chat_capacity(actor, agent_id: int, capacity: int) -> User:
    """Set how many chats an agent takes at once."""
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 0 <= capacity <= MAX_CHAT_CAPACITY:
        raise ValidationFailed("Capacity out of range",
                               {"capacity": [f"a whole number from 0 to {MAX_CHAT_CAPACITY}"]})
    agent = _staff(agent_id)
    before = agent.chat_capacity
    agent.chat_capacity = capacity
    audit(actor, "supervisor.set_capacity", "user", agent.id, before=before, after=capacity)
    return agent


def set_chat_skills(actor, agent_id: int, skills) -> tuple[User, list[str]]:
    """Set the chat topics an agent handles: their topics' chats go to them (and those alike) first."""
    from ..webchat import assignment as webchat

    agent = _staff(agent_id)
    before = webchat.skills_of(agent)
    after = webchat.set_skills(agent, skills)
    audit(actor, "supervisor.set_skills", "user", agent.id, before=before, after=after)
    return agent, after


def move_conversation(actor, conversation_id: int, *, agent_id: Optional[int] = None,
                      queue_code: Optional[str] = None) -> Conversation:
    """Give a live chat or an open email to another agent, or put it back on a queue."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"No conversation {conversation_id}")
    return conversations.move(actor, conversation, agent_id=agent_id, queue_code=queue_code)


@dataclass(frozen=True)
class Opening:
    """One weekday's webchat opening, local time."""

    weekday: int
    opens: time
    closes: time


def parse_opening(weekday: int, opens: str, closes: str) -> Optional[Opening]:
    """Read one weekday's HH:MM times; both blank means closed that day."""
    opens, closes = (opens or "").strip(), (closes or "").strip()
    if not opens and not closes:
        return None
    day = WEEKDAYS[weekday]
    try:
        start, end = time.fromisoformat(opens), time.fromisoformat(closes)
    except ValueError:
        raise ValidationFailed(f"{day}: times must be HH:MM",
                               {f"day{weekday}": ["give opening and closing times as HH:MM"]}) from None
    if start >= end:
        raise ValidationFailed(f"{day}: opens after it closes", {f"day{weekday}": ["must open before it closes"]})
    return Opening(weekday, start, end)


def set_opening_hours(actor, openings: list[Opening]) -> list[OpeningHours]:
    """Replace webchat's weekly opening hours (the webchat area reads chat_opening_hours)."""
    days = [o.weekday for o in openings]
    if len(days) != len(set(days)) or any(not 0 <= d <= 6 for d in days):
        raise ValidationFailed("One opening per weekday", {"weekday": ["each day 0-6 at most once"]})
    db.session.execute(delete(OpeningHours))
    rows = [OpeningHours(weekday=o.weekday, opens=o.opens, closes=o.closes)
            for o in sorted(openings, key=lambda o: o.weekday)]
    db.session.add_all(rows)
    audit(actor, "supervisor.set_opening_hours", "opening_hours", None,
          hours={WEEKDAYS[o.weekday]: f"{o.opens:%H:%M}-{o.closes:%H:%M}" for o in openings})
    return rows


def weekly_hours() -> dict[int, OpeningHours]:
    """Return the first opening of each weekday that has one."""
    hours = {}
    for row in db.session.scalars(select(OpeningHours).order_by(OpeningHours.weekday, OpeningHours.opens)):
        hours.setdefault(row.weekday, row)
    return hours


def post_banner(actor, message: str, *, public: bool = False,
                expires_at: Optional[datetime] = None) -> Banner:
    """Show a notice to agents (and residents on the chat page when public)."""
    message = (message or "").strip()
    if not message:
        raise ValidationFailed("A banner needs a message", {"message": ["required"]})
    if len(message) > 300:
        raise ValidationFailed("Banner too long", {"message": ["at most 300 characters"]})
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed("Expiry in the past", {"expires_at": ["must be in the future"]})
    banner = Banner(message=message, public=bool(public), created_by_id=getattr(actor, "id", None),
                    expires_at=expires_at)
    db.session.add(banner)
    db.session.flush()
    audit(actor, "supervisor.post_banner", "banner", banner.id, message=message, public=banner.public)
    send_after_commit(banner_changed, banner_id=banner.id, public=banner.public)
    return banner


def clear_banner(actor, banner_id: int) -> Banner:
    """Take a banner down."""
    banner = db.session.get(Banner, banner_id)
    if banner is None:
        raise NotFound(f"No banner {banner_id}")
    if banner.cleared_at is None:
        banner.cleared_at = utcnow()
        audit(actor, "supervisor.clear_banner", "banner", banner.id)
        send_after_commit(banner_changed, banner_id=banner.id, public=banner.public)
    return banner


def parse_pounds(raw) -> int:
    """Read a cost in pounds (e.g. "2.83") as whole pence."""
    try:
        value = Decimal(str(raw).strip().lstrip("£"))
    except (InvalidOperation, ValueError):
        raise ValidationFailed("Not an amount", {"cost": ["give pounds and pence, e.g. 2.83"]}) from None
    if not value.is_finite() or value < 0 or value > 1000:
        raise ValidationFailed("Cost out of range", {"cost": ["from £0 to £1,000"]})
    return int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def set_channel_costs(actor, pence_by_channel: dict[str, int]) -> None:
    """Store the estimated cost per contact of each channel named."""
    for channel, pence in pence_by_channel.items():
        if channel not in CHANNELS:
            raise ValidationFailed("Unknown channel", {"channel": [f"must be one of {', '.join(CHANNELS)}"]})
        row = db.session.get(ChannelCost, channel)
        before = row.pence if row else None
        if row is None:
            row = ChannelCost(channel=channel, pence=pence)
            db.session.add(row)
        row.pence = pence
        if before != pence:
            audit(actor, "supervisor.set_channel_cost", "channel_cost", channel, before=before, after=pence)
