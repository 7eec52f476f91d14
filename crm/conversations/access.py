"""Who may read or write a conversation: the one visibility policy (crm/visibility.py) applied by id.

A conversation belongs to a service through its case, else its chat topic or queue; a sensitive
one is for those who need it, and every read of one is audited (committed by the audit request hook).
"""
from .. import visibility
from ..errors import NotFound
from ..extensions import db
from ..models import Conversation, User


def readable_conversation(user: User, conversation_id: int) -> Conversation:
    """Return the conversation the user may read: NotFound when there is none, Forbidden when not theirs to see."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"No conversation {conversation_id}")
    visibility.check_conversation(user, conversation)
    return conversation


def writable_conversation(user: User, conversation_id: int) -> Conversation:
    """Return the conversation the user may write in (reply, note, assign, resolve), else refuse."""
    conversation = readable_conversation(user, conversation_id)
    visibility.check_write_conversation(user, conversation)
    return conversation


def visible_conversations(user: User):
    """Return a WHERE condition keeping only the conversations this user may read (for lists)."""
    return visibility.conversation_condition(user)
