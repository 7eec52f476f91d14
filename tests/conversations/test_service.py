"""The conversation actions every channel shares: numbering messages, notes, replies, resolve, assign, move."""
import pytest
from sqlalchemy import select

from crm.conversations import service
from crm.errors import Conflict, NotFound, ValidationFailed
from crm.extensions import db
from crm.models import AuditLog, Contact, Conversation, Message, Queue
from tests import factories


@pytest.fixture
def email_conversation(app):
    customer = factories.customer("Jane Resident", email="jane@example.org")
    conversation = Conversation(customer_id=customer.id, channel="email", status="open", token="core-token-0001",
                                last_seq=0)
    db.session.add(conversation)
    db.session.commit()
    return conversation


def _audits(action):
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action)).all()


def test_messages_are_numbered_one_after_another(email_conversation):
    first = service.append_message(email_conversation, "resident", "Hello", direction="inbound")
    second = service.append_message(email_conversation, "agent", "Hi", direction="outbound")
    db.session.commit()
    assert (first.seq, second.seq) == (1, 2)
    assert db.session.get(Conversation, email_conversation.id).last_seq == 2


def test_a_note_is_internal_and_never_queued_for_sending(email_conversation, agent):
    note = service.note(email_conversation, agent, "  Known to us  ")
    db.session.commit()
    assert (note.internal, note.body, note.delivery_status) == (True, "Known to us", None)


@pytest.mark.parametrize("body", ["", "   ", "x" * (service.MAX_REPLY_CHARS + 1)])
def test_an_empty_or_overlong_reply_is_refused(email_conversation, agent, body):
    with pytest.raises(ValidationFailed):
        service.reply(email_conversation, agent, body)


def test_resolving_gives_the_pending_contacts_the_outcome_and_is_audited(email_conversation, agent):
    contact = Contact(customer_id=email_conversation.customer_id, channel="email", direction="inbound",
                      summary="Email", outcome="pending", conversation_id=email_conversation.id)
    db.session.add(contact)
    db.session.flush()
    service.resolve(email_conversation, agent, "resolved_first_time")
    db.session.commit()
    assert email_conversation.status == "resolved" and email_conversation.closed_at is not None
    assert email_conversation.assignee_id == agent.id
    assert db.session.get(Contact, contact.id).outcome == "resolved_first_time"
    assert len(_audits("conversation.resolve")) == 1


@pytest.mark.parametrize("outcome", ["pending", "nonsense"])
def test_resolving_needs_a_real_outcome(email_conversation, agent, outcome):
    with pytest.raises(ValidationFailed):
        service.resolve(email_conversation, agent, outcome)


def test_assigning_to_staff_and_back_to_the_queue_is_audited(email_conversation, agent, make_user):
    colleague = make_user("agent", name="Colin Colleague")
    assert service.assign(agent, email_conversation, colleague.id) == colleague
    assert email_conversation.status == "assigned"
    assert service.assign(agent, email_conversation, None) is None
    assert (email_conversation.status, email_conversation.assignee_id) == ("open", None)
    assert [e.details["assignee"] for e in _audits("conversation.assign")] == [colleague.id, None]


def test_assigning_to_someone_who_has_left_is_refused(email_conversation, agent, make_user):
    gone = make_user("agent", name="Gone Agent")
    gone.active = False
    db.session.commit()
    with pytest.raises(ValidationFailed):
        service.assign(agent, email_conversation, gone.id)


def test_a_supervisor_moves_an_email_to_an_agent_or_back_to_an_email_queue(email_conversation, make_user):
    supervisor, agent = make_user("supervisor", name="Sam Supervisor"), make_user("agent", name="Ada Agent")
    db.session.add(Queue(code="general_email", name="General email", channel="email"))
    db.session.commit()
    service.move(supervisor, email_conversation, agent_id=agent.id)
    assert email_conversation.assignee_id == agent.id
    email_conversation.status = "waiting_customer"
    service.move(supervisor, email_conversation, queue_code="general_email")
    assert (email_conversation.status, email_conversation.assignee_id) == ("open", None)
    assert len(_audits("supervisor.move_conversation")) == 2


def test_a_move_says_where_it_goes_and_only_to_a_queue_of_the_same_channel(email_conversation, make_user):
    supervisor = make_user("supervisor", name="Sam Supervisor")
    db.session.add(Queue(code="chat", name="Chat", channel="webchat"))
    db.session.commit()
    with pytest.raises(ValidationFailed):
        service.move(supervisor, email_conversation)
    with pytest.raises(ValidationFailed):
        service.move(supervisor, email_conversation, queue_code="chat")
    with pytest.raises(NotFound):
        service.move(supervisor, email_conversation, queue_code="nowhere")


def test_a_resolved_email_does_not_move(email_conversation, make_user):
    supervisor, agent = make_user("supervisor", name="Sam Supervisor"), make_user("agent", name="Ada Agent")
    email_conversation.status = "resolved"
    with pytest.raises(Conflict):
        service.move(supervisor, email_conversation, agent_id=agent.id)


def test_only_a_chat_is_transferred(email_conversation, agent):
    with pytest.raises(ValidationFailed):
        service.transfer(email_conversation, agent, queue_code="general_email")
    assert db.session.scalar(select(Message).where(Message.conversation_id == email_conversation.id)) is None
