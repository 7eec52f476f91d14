"""A chat's transcript goes only to the address given at its start (or a verified one), once, within the mail limits."""
from sqlalchemy import select

from crm.extensions import db
from crm.models import ChatSession, CustomerIdentity


def _started(clients, server, **start):
    resident = clients(server.url, "/webchat")
    ack = resident.call("start", {"name": "Mina Resident", **start})
    assert "conversation_id" in ack, ack
    return resident, ack["conversation_id"]


def test_the_transcript_goes_once_and_only_to_the_address_given_at_the_start(server, clients):
    resident, conversation_id = _started(clients, server, email="mina@example.org", message="hello")
    elsewhere = resident.call("transcript", {"email": "victim@example.com"})
    assert elsewhere["error"]["code"] == "validation_error"
    assert resident.call("transcript", {"email": "Mina@Example.org"}) == {"ok": True}
    again = resident.call("transcript", {})
    assert again["error"]["code"] == "transcript_sent"
    db.session.expire_all()
    chat = db.session.get(ChatSession, conversation_id)
    assert chat.transcript_sent_to == "mina@example.org"


def test_a_chat_started_without_an_address_cannot_mail_a_typed_one(server, clients):
    resident, conversation_id = _started(clients, server, message="no email given")
    assert resident.call("transcript", {"email": "anyone@example.com"})["error"]["code"] == "validation_error"
    db.session.expire_all()
    assert db.session.get(ChatSession, conversation_id).transcript_sent_to is None


def test_a_verified_address_of_the_resident_may_have_it(server, clients):
    resident, conversation_id = _started(clients, server, email="mina@example.org", message="hello")
    db.session.expire_all()
    chat = db.session.get(ChatSession, conversation_id)
    customer_id = chat.conversation.customer_id
    if customer_id is None:
        return  # a chat tied to no record has only the address it started with
    identity = db.session.scalar(select(CustomerIdentity).where(CustomerIdentity.customer_id == customer_id,
                                                                CustomerIdentity.kind == "email"))
    db.session.add(CustomerIdentity(customer_id=customer_id, kind="email", value="mina.work@example.org",
                                    verified=True, source=identity.source if identity else None))
    db.session.commit()
    assert resident.call("transcript", {"email": "mina.work@example.org"}) == {"ok": True}


def test_transcripts_to_one_address_stop_at_the_mail_limit(app, server_factory, clients):
    server = server_factory(RESIDENT_MAIL_PER_RECIPIENT="2 per hour", WEBCHAT_MAX_OPEN_PER_IP="50",
                            WEBCHAT_MAX_OPEN_PER_VISITOR="50")
    answers = []
    for _ in range(3):
        resident, _ = _started(clients, server, email="mina@example.org", message="hello")
        answers.append(resident.call("transcript", {}))
        resident.call("end", {})
    assert answers[:2] == [{"ok": True}, {"ok": True}]
    assert answers[2]["error"]["code"] == "rate_limited"
