"""A corpus of tricky real-world-shaped messages through the whole inbound pipeline."""
from pathlib import Path

import pytest
from sqlalchemy import select

from crm.channels import email as channel
from crm.channels.email import parse
from crm.extensions import db
from crm.models import Conversation, CustomerIdentity, InboundEmail, Message, OutboundEmail
from tests import factories

CORPUS = Path(__file__).parent / "email_corpus"
OUR_SENT_ID = "crm.corpus0001@council.example"  # the Message-ID the bounces in the corpus return


def load(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def ingest(name: str):
    return channel.receive(load(name), source="file")


def first_message(result) -> Message:
    conversation = db.session.get(Conversation, result.conversation_id)
    return [m for m in conversation.messages if m.author == "resident"][0]


def test_every_corpus_message_is_stored_and_gets_an_answer(services):
    names = sorted(p.name for p in CORPUS.glob("*.eml"))
    assert len(names) >= 25
    for name in names:
        result = ingest(name)
        assert result.status in ("ingested", "threaded", "auto_reply", "quarantined"), name
    assert db.session.scalar(select(db.func.count(InboundEmail.id))) == len(names)


def test_wrongly_declared_charset_is_read_as_latin_1(services):
    message = first_message(ingest("latin1_declared_ascii.eml"))
    assert "caf\u00e9 on Fell View" in message.body
    inbound = db.session.scalar(select(InboundEmail))
    assert inbound.subject == "Caf\u00e9 bins on Fell View"


def test_encoded_words_in_headers_are_decoded_and_the_service_address_routes(services):
    result = ingest("encoded_words.eml")
    assert result.status == "ingested"
    conversation = db.session.get(Conversation, result.conversation_id)
    assert conversation.subject == "Probl\u00e8me de route \u2013 Lowther Street"
    assert conversation.customer.name == "Si\u00e2n N\u00ed Bhriain"
    assert conversation.case.service.code == "highways"
    assert conversation.queue.code == "highways_email"
    assert "bus stop \u2013 please look at it" in first_message(result).body


def test_unknown_charset_falls_back_to_utf_8(services):
    assert "library card \u2013 can I" in first_message(ingest("unknown_charset.eml")).body


@pytest.mark.parametrize("name,needle", [
    ("broken_boundary.eml", "Church Lane has been out since Friday"),
    ("missing_boundary_parameter.eml", "still out on Church Lane"),
    ("eightbit_utf8_no_mime.eml", "B5299 \u2013 it is like glass near Dalston \u2744"),
])
def test_broken_mime_still_yields_the_text(services, name, needle):
    result = ingest(name)
    assert result.status == "ingested"
    assert needle in first_message(result).body


def test_nested_multipart_keeps_text_html_inline_image_and_attachment(services):
    result = ingest("nested_multipart.eml")
    message = first_message(result)
    assert message.body.startswith("Someone has dumped a sofa")
    files = {a.filename: a for a in message.attachments}
    assert set(files) == {"sofa.png", "map.pdf"}
    assert files["sofa.png"].inline and files["sofa.png"].content_type == "image/png"
    assert files["map.pdf"].data.startswith(b"%PDF-1.4") and not files["map.pdf"].inline
    # The inline image now points at our stored copy, not at cid:.
    assert f'src="/email/attachments/{files["sofa.png"].id}"' in message.html
    assert "cid:" not in message.html
    assert db.session.get(Conversation, result.conversation_id).case.service.code == "general"  # no waste address here


def test_html_only_mail_is_sanitised_and_plain_text_is_derived(services):
    message = first_message(ingest("html_only.eml"))
    assert "I have moved house \u2013 do I still pay for the old one?" in message.body
    assert "- Moved on 1 November" in message.body
    assert "alert" not in message.body and "color: red" not in message.body
    for dangerous in ("<script", "onload", "javascript:", "tracker.example.com", "<style"):
        assert dangerous not in message.html
    assert 'href="https://www.example.org/"' in message.html


def test_forwarded_chains_are_kept_whole(services):
    message = first_message(ingest("forwarded_chain.eml"))
    assert "my neighbour asked me to send this on" in message.body
    assert "The hedge at 4 Beck Side now covers half the footpath" in message.body
    assert "Please report it to the county council." in message.body


@pytest.mark.parametrize("name,kept,cut", [
    ("gmail_reply.eml", "A car lost a hubcap this morning.", "Thank you for contacting"),
    ("outlook_reply.eml", "coned off but not filled.", "Thank you for contacting"),
])
def test_replies_show_only_the_new_text_and_keep_the_full_text(services, name, kept, cut):
    factories.customer("Jane Resident", email="jane@example.org")
    result = ingest(name)
    message = first_message(result)
    assert kept in message.body and cut not in message.body
    inbound = db.session.scalar(select(InboundEmail).where(InboundEmail.id == result.inbound_id))
    assert cut in inbound.full_text


@pytest.mark.parametrize("name", ["ooo_outlook.eml", "ooo_rfc3834.eml", "vacation_precedence.eml",
                                  "mailing_list.eml"])
def test_auto_replies_and_list_mail_are_not_enquiries(services, smtp_sink, name):
    result = ingest(name)
    assert result.status == "auto_reply"
    assert result.conversation_id is None
    assert db.session.scalar(select(db.func.count(Conversation.id))) == 0
    assert smtp_sink.messages == []


@pytest.mark.parametrize("name", ["missing_from.eml", "malformed_from.eml"])
def test_messages_without_a_usable_sender_are_quarantined_with_the_reason(services, name):
    result = ingest(name)
    assert result.status == "quarantined"
    assert "sender" in result.reason
    inbound = db.session.get(InboundEmail, result.inbound_id)
    assert inbound.status == "quarantined" and inbound.raw == load(name)


def test_executable_attachments_are_withheld_and_noted(services):
    result = ingest("blocked_attachment.eml")
    message = first_message(result)
    assert message.attachments == []
    inbound = db.session.get(InboundEmail, result.inbound_id)
    assert inbound.details["withheld"][0]["filename"] == "invoice.pdf.exe"


def _sent_email_to_jane():
    """A reply we sent to jane@example.org with the Message-ID the corpus bounces return."""
    customer = factories.customer("Jane Resident", email="jane@example.org")
    message = channel.send_to_customer(customer, "Update", "Hello")
    send = db.session.scalar(select(OutboundEmail).where(OutboundEmail.stored_message_id == message.id))
    send.message_id_header = message.email_message_id = OUR_SENT_ID
    db.session.commit()
    return customer, send


@pytest.mark.parametrize("name", ["bounce_postfix.eml", "bounce_exim.eml", "bounce_qmail.eml",
                                  "bounce_gmail.eml", "bounce_exchange.eml"])
def test_bounces_of_each_mta_mark_the_address_undeliverable(services, smtp_sink, name):
    customer, send = _sent_email_to_jane()
    sent_before = len(smtp_sink.messages)
    result = ingest(name)
    assert result.status == "auto_reply"
    identity = db.session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == "jane@example.org"))
    assert identity.undeliverable, name
    db.session.refresh(send)
    assert send.status == "bounced" and send.stored_message.delivery_status == "bounced"
    assert result.conversation_id == send.conversation_id  # shown on the conversation as a note
    assert len(smtp_sink.messages) == sent_before  # never answered
    assert channel.send_to_customer(customer, "Another update", "Hello") is None


def test_a_delayed_notice_does_not_mark_the_address(services, smtp_sink):
    _sent_email_to_jane()
    assert ingest("bounce_delayed.eml").status == "auto_reply"
    identity = db.session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == "jane@example.org"))
    assert not identity.undeliverable


def test_a_bounce_returning_none_of_our_mail_marks_nobody(services, smtp_sink):
    _sent_email_to_jane()
    assert ingest("forged_bounce.eml").status == "auto_reply"
    identity = db.session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == "jane@example.org"))
    assert not identity.undeliverable


@pytest.mark.parametrize("value, plain", [
    ("Jane Resident <jane@example.org>", True), ("jane@example.org", True), ("<jane@example.org>", True),
    ("  Jane <jane@example.org>  ", True), ("Mary O'Brien-Smith <mary.obrien+council@mail.example.co.uk>", True),
    ("J 2 <j_2%x@a-b.example>", True),
    ("Jane  Resident <jane@example.org>", False), ('"Smith, Jane" <jane@example.org>', False),
    ("=?utf-8?q?J=C3=BCrgen?= <j@example.de>", False), ("jane@example.org, john@example.org", False),
    ("Jane <jane@example..org>", False), ("jane@localhost", False), ("Jane (home) <jane@example.org>", False),
])
def test_the_plain_mailbox_shortcut_answers_only_for_plain_mailboxes_and_agrees_with_the_modern_parser(value, plain):
    from email import policy
    from email.parser import BytesHeaderParser

    shortcut = parse._plain_mailbox(value)
    assert (shortcut is not None) == plain
    if plain:
        modern = BytesHeaderParser(policy=policy.default).parsebytes(f"From: {value}\n\n".encode())["From"]
        assert [shortcut] == [(a.display_name, a.addr_spec) for a in modern.addresses]
        assert not modern.defects
