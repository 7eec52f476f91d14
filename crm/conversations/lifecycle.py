"""Conversation statuses and the moves between them, for every channel, in one place.

An email thread is `open` until someone has it (`assigned`), `waiting_customer` after a reply, and
`resolved` with an outcome; a resident's reply brings it back. A chat is `queued`, then `assigned`,
`ended` when the resident leaves and `closed` by its agent. Joined email threads are `closed`.
"""
from ..errors import Conflict
from ..models import Conversation, utcnow
from ..models.conversations import CONVERSATION_STATUSES

STATUSES = CONVERSATION_STATUSES
UNASSIGNED = ("open", "queued")  # in a queue, nobody has it yet
OPEN = ("queued", "open", "assigned", "waiting_customer")  # not finished: in an inbox or a live chat
ACTIVE = OPEN + ("ended",)  # still someone's work: an ended chat takes its agent's slot until closed
LIVE_CHAT = ("queued", "assigned")  # the resident is (or may be) still in the chat
HELD_CHAT = ("assigned", "ended")  # counts against the agent's chat capacity until closed
DONE = ("resolved", "closed")
FINISHED = ("resolved", "ended", "closed")  # nobody is there to read a reply live
MOVABLE_CHANNELS = ("webchat", "email")


def can_move(conversation: Conversation) -> bool:
    """Say whether the conversation may go to another agent or queue: a live chat, or an email still open."""
    if conversation.channel == "webchat":
        return conversation.status in LIVE_CHAT
    return conversation.status in ACTIVE


def check_move(conversation: Conversation) -> None:
    """Refuse moving a finished conversation."""
    if not can_move(conversation):
        raise Conflict("That conversation has finished", {"conversation_id": ["already finished"]})


def check_live_chat(conversation: Conversation) -> None:
    """Refuse writing to a resident who has left the chat."""
    if conversation.status in FINISHED:
        raise Conflict("This chat has ended; the resident is no longer there to read a reply",
                       {"conversation": ["ended"]}, code="ended")


def assigned(conversation: Conversation, assignee_id) -> None:
    """Give an email conversation to someone, or back to its queue; a finished one keeps its status."""
    conversation.assignee_id = assignee_id
    if conversation.status in ("open", "queued", "assigned"):
        conversation.status = "assigned" if assignee_id else "open"


def back_in_front(conversation: Conversation) -> None:
    """A resident wrote: put the conversation back in front of the agents, whatever state it was in."""
    if conversation.status not in ("open", "assigned"):
        conversation.status = "assigned" if conversation.assignee_id else "open"
        conversation.closed_at = None


def waiting_on_customer(conversation: Conversation) -> None:
    """We answered: the conversation now waits on the resident."""
    conversation.status = "waiting_customer"


def resolved(conversation: Conversation) -> None:
    """Mark a conversation resolved now."""
    conversation.status = "resolved"
    conversation.closed_at = utcnow()

