"""The channel registry: each channel registered once under its contact channel name, its parts registered
with the app, and a resident's news sent by the channel they prefer when it can reach them, else by email."""
import pytest
import requests
from sqlalchemy import select

from crm import areas
from crm.cases.service import post_public_update
from crm.channels import registry
from crm.errors import Conflict
from crm.extensions import db
from crm.labels import LABELS
from crm.models import CHANNELS, Contact, Conversation, Message, OutboundEmail
from crm.signals import message_stored
from crm.webchat.chats import start_chat
from tests import factories
from tests.conftest import make_test_app
from tests.webchat.conftest import clients, server_factory  # noqa: F401  (fixtures: a real server, real sockets)

BUILT_IN_NAMES = ["phone", "webchat", "email", "web_form", "open311"]


# ---- the registry ----------------------------------------------------------------------------------

def test_every_channel_is_registered_once_under_its_contact_channel_name():
    adapters = registry.load()
    names = [adapter.name for adapter in adapters]
    assert names == BUILT_IN_NAMES
    assert len(set(names)) == len(names)
    assert set(names) <= set(CHANNELS)  # the names stored on contacts and counted in the reports
    assert {a.name: a.label for a in adapters} == {name: LABELS["channel"][name] for name in names}


def test_a_channel_registered_twice_is_refused():
    with pytest.raises(RuntimeError, match="registered more than once: phone"):
        registry.load(("crm.channels.phone", "crm.channels.email.channel", "crm.channels.phone"))


def test_the_app_registers_each_channel_as_one_of_its_areas(app):
    adapters = [area for area in areas() if isinstance(area, registry.Channel)]
    assert [adapter.name for adapter in adapters] == BUILT_IN_NAMES
    assert registry.channels() == registry.load()
    urls = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/open311/v2/discovery.<fmt>", "/chat", "/email/"} <= urls  # each channel's own pages are there


def test_phone_web_forms_and_open311_cannot_send_to_a_resident(app, services):
    resident = factories.customer("Jane Resident", email="jane@example.org", phone="07700 900123")
    for name in ("phone", "web_form", "open311"):
        adapter = registry.find(name)
        assert not adapter.reaches(resident)
        with pytest.raises(Conflict, match="cannot send a message to a resident"):
            adapter.deliver(resident, "Your case", "News")
        with pytest.raises(Conflict, match="has no conversations to reply in"):
            adapter.reply(None, None, "Hello")


def test_email_reaches_a_resident_at_an_address_that_has_not_bounced(app, services):
    email = registry.find("email")
    resident = factories.customer("Jane Resident", email="jane@example.org")
    assert email.address(resident) == "jane@example.org"
    resident.identities[0].undeliverable = True
    assert not email.reaches(resident)


# ---- notifying a resident ----------------------------------------------------------------------------

def _chat_of(resident_email: str) -> Conversation:
    """Start a live webchat as a resident would, and return it."""
    chat = start_chat({"name": "Jane Resident", "email": resident_email, "topic": "highways"}, None, None)
    db.session.commit()
    return chat


def _stored_signals():
    """Collect what message_stored announces after each commit."""
    heard = []

    def listen(sender, **payload):
        heard.append(payload)

    message_stored.connect(listen)
    return heard, listen


def test_a_chat_reply_goes_to_a_resident_still_in_the_chat_and_is_refused_once_they_left(app, services, agent):
    chat = _chat_of("jane@example.org")
    webchat = registry.find(chat.channel)
    reply = webchat.reply(chat, agent, "Let me check that for you")
    db.session.commit()
    assert (reply.author, reply.author_user_id, reply.body) == ("agent", agent.id, "Let me check that for you")
    chat.status = "ended"
    with pytest.raises(Conflict, match="This chat has ended"):
        webchat.reply(chat, agent, "Are you there?")


def test_news_of_a_case_goes_by_email_when_the_preferred_channel_cannot_send(app, services, smtp_sink):
    resident = factories.customer("Jane Resident", email="jane@example.org", phone="07700 900123")
    resident.preferred_channel = "phone"
    case = factories.case(resident)
    post_public_update(case, "The crew will be there on Tuesday.")
    db.session.commit()
    [mail] = smtp_sink.to("jane@example.org")
    assert "The crew will be there on Tuesday." in mail.get_body(("plain",)).get_content()


def test_news_of_a_case_goes_into_the_live_chat_of_a_resident_who_prefers_webchat(app, services, smtp_sink):
    chat = _chat_of("jane@example.org")
    resident = chat.customer
    resident.preferred_channel = "webchat"
    case = factories.case(resident)
    heard, listen = _stored_signals()
    try:
        post_public_update(case, "The crew will be there on Tuesday.")
        db.session.commit()
    finally:
        message_stored.disconnect(listen)
    [told] = db.session.scalars(select(Message).where(Message.conversation_id == chat.id,
                                                      Message.author == "system")).all()
    assert "The crew will be there on Tuesday." in told.body and case.reference in told.body
    # Announced as stored elsewhere, so the webchat push delivers it to the resident's widget.
    assert [(p["message_id"], p["source"]) for p in heard if p["conversation_id"] == chat.id] == [(told.id, "registry")]
    assert smtp_sink.messages == [] and db.session.query(OutboundEmail).count() == 0


def test_a_resident_in_a_live_chat_reads_the_news_of_their_case_in_the_widget(app, services, server_factory, clients,
                                                                              make_user, api_token):
    server = server_factory()
    resident = clients(server.url, "/webchat")
    started = resident.call("start", {"name": "Jane Resident", "email": "jane@example.org"})
    chat = db.session.get(Conversation, started["conversation_id"])
    chat.customer.preferred_channel = "webchat"
    case = factories.case(chat.customer)
    supervisor = make_user("supervisor")
    answer = requests.patch(f"{server.url}/api/v1/cases/{case.reference}", headers=api_token(supervisor),
                            json={"public_update": "The crew will be there on Tuesday."}, timeout=10)
    assert answer.status_code == 200, answer.text
    told = resident.expect("message", lambda d: d["author"] == "system")
    assert "The crew will be there on Tuesday." in told["body"] and case.reference in told["body"]


def test_news_falls_back_to_email_once_the_preferred_chat_has_ended(app, services, smtp_sink):
    chat = _chat_of("jane@example.org")
    resident = chat.customer
    resident.preferred_channel = "webchat"
    chat.status = "ended"
    case = factories.case(resident)
    post_public_update(case, "Fixed this morning.")
    db.session.commit()
    [mail] = smtp_sink.to("jane@example.org")
    assert "Fixed this morning." in mail.get_body(("plain",)).get_content()
    assert db.session.scalar(select(Message).where(Message.conversation_id == chat.id,
                                                   Message.author == "system")) is None


def test_a_resident_no_channel_can_reach_is_sent_nothing(app, services, smtp_sink):
    resident = factories.customer("Phone Only", phone="07700 900222")
    resident.preferred_channel = "webchat"  # but no chat is live, and there is no email address
    case = factories.case(resident)
    post_public_update(case, "Done soon.")
    db.session.commit()
    assert smtp_sink.messages == [] and db.session.query(Message).count() == 0


def test_a_resident_who_prefers_a_channel_the_app_lacks_gets_email(app, services, smtp_sink):
    resident = factories.customer("Jane Resident", email="jane@example.org",
                                  address={"line1": "1 High Street", "postcode": "AB1 2CD"})
    resident.preferred_channel = "letter"
    case = factories.case(resident)
    post_public_update(case, "The crew will be there on Tuesday.")
    db.session.commit()
    assert len(smtp_sink.to("jane@example.org")) == 1
    assert db.session.query(Contact).filter_by(channel="letter").count() == 0


# ---- adding a channel ------------------------------------------------------------------------------

@pytest.fixture
def letters_app(app, database_url, smtp_sink):
    """A second app on the same database whose registry also holds the letter channel (tests/channels/letters.py)."""
    letters = make_test_app(database_url, CHANNELS=(*registry.BUILT_IN, "tests.channels.letters"),
                            SMTP_HOST=app.config["SMTP_HOST"], SMTP_PORT=app.config["SMTP_PORT"])
    with letters.app_context():
        yield letters
        db.session.remove()
        db.engine.dispose()


def test_a_new_channel_registered_in_an_app_has_its_parts_registered(app, letters_app):
    assert [adapter.name for adapter in registry.channels()] == [*BUILT_IN_NAMES, "letter"]
    assert letters_app.test_client().get("/letters/to-print").get_json() == []
    assert app.test_client().get("/letters/to-print").status_code == 404  # other apps never see it


def test_a_new_channel_delivers_the_news_of_residents_who_prefer_it(letters_app, services, smtp_sink):
    resident = factories.customer("Jane Resident", email="jane@example.org",
                                  address={"line1": "1 High Street", "postcode": "AB1 2CD"})
    resident.preferred_channel = "letter"
    case = factories.case(resident)
    post_public_update(case, "The crew will be there on Tuesday.")
    db.session.commit()
    summary = f"Letter: Update on your case {case.reference}: {case.title}"
    assert letters_app.test_client().get("/letters/to-print").get_json() == [
        {"customer_id": resident.id, "summary": summary}]
    assert smtp_sink.messages == []
