"""Who may read a conversation: the visibility policy's rules (crm.visibility), kept under their old names.

A conversation belongs to a service through its case, else its chat topic or queue; a sensitive
one is for those who need it, and every read of one is audited.
"""
from typing import Optional

from .. import visibility
from ..models import Conversation, Service, User


def owning_service(conversation: Conversation) -> Optional[Service]:
    """Return the service a conversation belongs to."""
    return visibility.conversation_service(conversation)


def can_view_conversation(user: User, conversation: Conversation) -> bool:
    """Say whether a member of staff may read a conversation."""
    return visibility.can_see_conversation(user, conversation)


def check_view_conversation(user: User, conversation: Conversation) -> None:
    """Refuse (Forbidden) a conversation the user may not read; audit reads of sensitive ones."""
    visibility.check_conversation(user, conversation)


def visible_conversations(user: User):
    """Return a WHERE condition keeping only the conversations this user may read (for lists)."""
    return visibility.conversation_condition(user)
