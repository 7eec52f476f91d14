"""Reading and writing a conversation by id: the visibility policy's answer, and nothing to find is a 404."""
import pytest

from crm.conversations.access import readable_conversation, writable_conversation
from crm.errors import Forbidden, NotFound
from crm.extensions import db
from crm.models import Conversation
from tests import factories


def _chat(status, assignee_id=None):
    customer = factories.customer("Chat Visitor")
    conversation = Conversation(customer_id=customer.id, channel="webchat", status=status, last_seq=0,
                                token=f"access-{status}-{assignee_id}", assignee_id=assignee_id)
    db.session.add(conversation)
    db.session.commit()
    return conversation


def test_a_conversation_that_does_not_exist_is_not_found(agent):
    with pytest.raises(NotFound):
        readable_conversation(agent, 999999)


def test_the_agent_holding_a_live_chat_reads_and_writes_it(agent):
    chat = _chat("assigned", agent.id)
    assert readable_conversation(agent, chat.id) is chat
    assert writable_conversation(agent, chat.id) is chat


def test_another_agents_live_chat_is_refused(agent, make_user):
    colleague = make_user("agent", name="Colin Colleague")
    chat = _chat("assigned", colleague.id)
    with pytest.raises(Forbidden):
        writable_conversation(agent, chat.id)
