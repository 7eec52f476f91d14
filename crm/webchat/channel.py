"""The webchat channel's adapter in the channel registry: it reaches a resident only while they are in a live chat."""
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from ..channels.registry import Channel
from ..conversations import lifecycle
from ..conversations.service import append_message
from ..customers.identity import live_customer
from ..extensions import db
from ..models import Conversation, Message
from ..signals import message_stored, send_after_commit
from .messages import serialise_message
from .rules import CHANNEL, LIVE_STATES


def live_chat(customer) -> Optional[Conversation]:
    """Return the resident's latest chat that is still live (queued or with an adviser), or None."""
    customer = live_customer(customer)
    if customer is None:
        return None
    return db.session.scalar(select(Conversation).where(
        Conversation.customer_id == customer.id, Conversation.channel == CHANNEL,
        Conversation.status.in_(LIVE_STATES)).order_by(Conversation.id.desc()).limit(1))


class WebchatChannel(Channel):
    """Webchat: a message goes into the resident's live chat; with no chat open there is nobody to tell."""

    name = CHANNEL

    def address(self, customer, case=None) -> Optional[str]:
        """Name the live chat the message would go into, or None when no chat is live."""
        chat = live_chat(customer)
        return f"chat {chat.id}" if chat is not None else None

    def deliver(self, customer, subject: str, body: str, case=None) -> Optional[Message]:
        """Add a system message to the resident's live chat; the widget gets it after commit."""
        chat = live_chat(customer)
        if chat is None:
            return None
        message = append_message(chat, "system", f"{subject}\n\n{body}", direction="outbound")
        set_committed_value(message, "conversation", chat)
        # Not source=webchat: the chat's own handlers did not store it, so the push receiver delivers it,
        # from the wire form taken now: it runs after commit, where it may not query.
        send_after_commit(message_stored, message_id=message.id, conversation_id=chat.id, channel=CHANNEL,
                          author="system", internal=False, source="registry",
                          wire=serialise_message(message), holder_id=chat.assignee_id)
        return message

    def reply(self, conversation, agent, body: str, attachments: Iterable = ()) -> Message:
        """Add the reply to a chat the resident is still in; the widget gets it after commit (files are not sent)."""
        lifecycle.check_live_chat(conversation)
        message = append_message(conversation, "agent", body, direction="outbound", author_user=agent)
        send_after_commit(message_stored, message_id=message.id, conversation_id=conversation.id,
                          channel=conversation.channel, author="agent", internal=False, source="api",
                          wire=serialise_message(message), holder_id=conversation.assignee_id)
        return message

    def register(self, app, api) -> None:
        """Register webchat's pages, settings and Socket.IO handlers (crm.webchat.register)."""
        from . import register  # noqa: PLC0415

        register(app, api)


channel = WebchatChannel()
