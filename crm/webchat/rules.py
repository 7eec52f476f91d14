"""What every webchat module shares: the channel's names and states, input checks, finding a chat."""
import unicodedata

from flask import current_app
from sqlalchemy import select

from ..auth.roles import SUPERVISORS
from ..conversations.lifecycle import HELD_CHAT, LIVE_CHAT
from ..errors import Conflict, DomainError, NotFound, ValidationFailed
from ..extensions import db
from ..models import Conversation, User

CHANNEL = "webchat"
# Chat topics residents choose in the pre-chat form (code, label); agents' skills are these codes.
TOPICS = [
    ("council_tax", "Council Tax"), ("waste", "Bins and recycling"), ("highways", "Roads and pavements"),
    ("adult_social_care", "Adult social care"), ("libraries", "Libraries"),
]
LIVE_STATES = LIVE_CHAT  # a resident is (or may be) still there
HELD_STATES = HELD_CHAT  # counts against the agent's capacity until closed


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
    if raw.isprintable():  # nothing of category C in it: the usual message, kept as it is without a walk
        text_ = raw.strip()
    else:
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


# ---- finding a chat --------------------------------------------------------------------------

def conversation_by_token(token) -> Conversation:
    """Return the webchat conversation a resident's token opens, or refuse."""
    if not isinstance(token, str) or not 10 <= len(token) <= 64:
        raise ValidationFailed("token is required", {"token": ["the token start gave"]})
    conversation = db.session.scalar(select(Conversation).where(Conversation.token == token))
    if conversation is None or conversation.chat is None:
        raise NotFound("No chat with that token")
    return conversation


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
