"""The inbound pipeline: threading, sender checks, acknowledgements, loops, idempotency, quarantine."""
from datetime import timedelta

from sqlalchemy import func, select

from crm.channels import email as channel
from crm.channels.email import ingest as ingest_pipeline
from crm.extensions import db
from crm.models import (
    Case, Contact, Conversation, InboundEmail, Message, OutboundEmail, utcnow,
)
from tests.channels.mailbuilder import raw_email


def receive(raw, **kw):
    return channel.receive(raw, source=kw.pop("source", "file"), **kw)


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def ack_for(conversation_id) -> OutboundEmail:
    return db.session.scalar(select(OutboundEmail).where(
        OutboundEmail.conversation_id == conversation_id, OutboundEmail.kind == "ack"))


def test_a_new_enquiry_makes_customer_conversation_contact_case_and_one_acknowledgement(services, smtp_sink):
    result = receive(raw_email(sender="Jane Resident <Jane@Example.org>", to="highways@council.example",
                               subject="Pothole on Main Street"))
    assert result.status == "ingested" and result.case_reference.startswith("CAS-")
    conversation = db.session.get(Conversation, result.conversation_id)
    assert conversation.customer.name == "Jane Resident"
    assert conversation.customer.primary_email == "jane@example.org"
    assert conversation.queue.code == "highways_email" and conversation.status == "open"
    contact = db.session.scalar(select(Contact).where(Contact.conversation_id == conversation.id))
    assert (contact.channel, contact.direction, contact.outcome) == ("email", "inbound", "case_raised")
    assert contact.case_id == conversation.case_id
    assert len(smtp_sink.messages) == 1
    ack = smtp_sink.messages[0]["message"]
    assert smtp_sink.messages[0]["mail_from"] == "<>"  # null sender: bounces of the ack cannot loop
    assert result.case_reference in ack["Subject"] and result.case_reference in ack.get_body(("plain",)).get_content()
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["In-Reply-To"] == f"<{conversation.messages[0].email_message_id}>"
    assert ack["Reply-To"] == f"reply+{conversation.token}@council.example"


def test_a_reply_threads_by_in_reply_to_even_after_a_subject_change(services, smtp_sink):
    first = receive(raw_email(subject="Pothole"))
    ours = ack_for(first.conversation_id).message_id_header
    reply = receive(raw_email(subject="Completely different words", in_reply_to=ours, body="Any news?"))
    assert reply.status == "threaded" and reply.conversation_id == first.conversation_id
    assert count(Case) == 1 and count(Conversation) == 1
    assert len(smtp_sink.messages) == 1  # no second acknowledgement on the same thread


def test_a_reply_with_only_references_threads(services):
    first = receive(raw_email(subject="Bins", message_id="bins-1@example.org"))
    reply = receive(raw_email(subject="Bins again", references=["unknown@elsewhere", "bins-1@example.org"]))
    assert reply.status == "threaded" and reply.conversation_id == first.conversation_id


def test_a_reply_by_case_reference_in_the_subject_threads(services):
    first = receive(raw_email(subject="Streetlight"))
    reply = receive(raw_email(subject=f"Still dark [{first.case_reference}]", body="Still not fixed"))
    assert reply.status == "threaded" and reply.conversation_id == first.conversation_id


def test_a_reply_to_the_per_conversation_address_threads(services):
    first = receive(raw_email(subject="Hedge"))
    token = db.session.get(Conversation, first.conversation_id).token
    reply = receive(raw_email(to=f"reply+{token}@council.example", subject="no reference here"))
    assert reply.status == "threaded" and reply.conversation_id == first.conversation_id


def test_a_reply_from_another_address_does_not_join_someone_elses_case(services, smtp_sink):
    first = receive(raw_email(sender="jane@example.org", subject="Pothole", message_id="jane-1@example.org"))
    stranger = receive(raw_email(sender="Mallory <mallory@example.net>", subject=f"Re: Pothole [{first.case_reference}]",
                                 in_reply_to="jane-1@example.org", body="I am not Jane"))
    assert stranger.status == "ingested"
    assert stranger.conversation_id != first.conversation_id
    assert stranger.customer_id != first.customer_id
    assert stranger.case_reference != first.case_reference
    first_thread = db.session.get(Conversation, first.conversation_id)
    assert all("I am not Jane" not in m.body for m in first_thread.messages)


def test_a_reply_to_a_resolved_case_within_its_window_reopens_it(services, app):
    first = receive(raw_email(subject="Pothole", message_id="p-1@example.org"))
    case = db.session.scalar(select(Case))
    case.status, case.resolved_at = "resolved", utcnow() - timedelta(days=1)
    db.session.get(Conversation, first.conversation_id).status = "resolved"
    db.session.commit()
    reply = receive(raw_email(subject="Re: Pothole", in_reply_to="p-1@example.org", body="It is back"))
    assert reply.status == "threaded" and reply.conversation_id == first.conversation_id
    db.session.refresh(case)
    assert case.status == "open"
    assert db.session.get(Conversation, first.conversation_id).status == "open"


def test_a_reply_to_an_old_closed_case_starts_a_new_enquiry_that_points_back(services):
    first = receive(raw_email(subject="Pothole", message_id="old-1@example.org"))
    case = db.session.scalar(select(Case))
    case.status, case.closed_at = "closed", utcnow() - timedelta(days=200)
    db.session.commit()
    reply = receive(raw_email(subject=f"Re: Pothole [{first.case_reference}]", in_reply_to="old-1@example.org",
                              body="The pothole is back"))
    assert reply.status == "ingested" and reply.conversation_id != first.conversation_id
    assert reply.case_reference != first.case_reference
    new_case = db.session.scalar(select(Case).where(Case.reference == reply.case_reference))
    assert f"Follows closed case {first.case_reference}" in new_case.description
    db.session.refresh(case)
    assert case.status == "closed"


def test_an_auto_reply_storm_of_100_messages_sends_nothing(services, smtp_sink):
    first = receive(raw_email(sender="jane@example.org", subject="Pothole"))
    sent_before = len(smtp_sink.messages)
    ours = ack_for(first.conversation_id).message_id_header
    kinds = [
        {"Auto-Submitted": "auto-replied"}, {"X-Autoreply": "yes"}, {"Precedence": "bulk"},
        {"X-Auto-Response-Suppress": "All"}, {"List-Id": "<list.example.org>"}, {"Precedence": "junk"},
    ]
    for n in range(100):
        result = receive(raw_email(sender="jane@example.org", subject=f"Out of office {n}", in_reply_to=ours,
                                   headers=kinds[n % len(kinds)], body="I am away"),
                         envelope_from="" if n % 7 == 0 else "jane@example.org")
        assert result.status == "auto_reply"
    assert len(smtp_sink.messages) == sent_before
    assert count(OutboundEmail) == 1  # the one acknowledgement of the real enquiry
    assert count(Case) == 1 and count(Conversation) == 1
    assert db.session.get(Conversation, first.conversation_id).status == "open"


def test_our_own_mail_coming_back_is_a_loop_not_an_enquiry(services, smtp_sink):
    first = receive(raw_email(subject="Pothole"))
    echoed = receive(raw_email(sender="Council Contact Centre <contact@council.example>", subject="Re: Pothole",
                               message_id=ack_for(first.conversation_id).message_id_header))
    assert echoed.status == "auto_reply"
    assert len(smtp_sink.messages) == 1


def test_acknowledgements_are_rate_limited_per_sender(services, smtp_sink, app):
    app.config["EMAIL_ACK_PER_SENDER_PER_HOUR"] = 2
    for n in range(4):
        assert receive(raw_email(subject=f"Enquiry {n}")).status == "ingested"
    assert len(smtp_sink.messages) == 2 and count(Case) == 4


def test_the_same_message_twice_is_stored_once_and_reported_duplicate(services, smtp_sink):
    raw = raw_email(subject="Pothole", message_id="once@example.org")
    first = receive(raw)
    again = receive(raw, source="smtp")
    assert again.status == "duplicate" and again.conversation_id == first.conversation_id
    assert count(InboundEmail) == 1 and count(Message) == 2  # the enquiry and its acknowledgement
    assert len(smtp_sink.messages) == 1


def test_messages_without_message_id_are_deduplicated_by_content(services):
    raw = b"From: jane@example.org\r\nTo: contact@council.example\r\nSubject: No id\r\n\r\nHello\r\n"
    assert receive(raw).status == "ingested"
    assert receive(raw).status == "duplicate"
    assert receive(raw + b"More\r\n").status == "ingested"


def test_a_message_stored_but_never_processed_is_processed_when_it_comes_again(services):
    raw = raw_email(subject="Pothole", message_id="stuck@example.org")
    db.session.add(InboundEmail(dedupe_key=channel.dedupe_key("stuck@example.org", raw), content_sha256="x",
                                raw=raw, size=len(raw), source="smtp", status="received", details={},
                                received_at=utcnow() - timedelta(seconds=5)))
    db.session.commit()
    # Its first taker was killed after the 250: the sender's retry is processed, never answered "duplicate".
    assert receive(raw).status == "ingested"
    assert receive(raw).status == "duplicate"  # and once processed, a further copy is a duplicate


def test_the_sweep_processes_what_was_stored_and_never_processed(services):
    raws = [raw_email(subject=f"Bins {n}", message_id=f"swept-{n}@example.org") for n in range(3)]
    for raw in raws:
        db.session.add(InboundEmail(dedupe_key=channel.dedupe_key(None, raw), content_sha256="x", raw=raw,
                                    size=len(raw), source="smtp", status="received", details={},
                                    received_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()
    assert channel.sweep_unprocessed() == 3
    assert set(db.session.scalars(select(InboundEmail.status))) == {"ingested"}
    assert channel.sweep_unprocessed() == 0


def test_a_message_over_the_size_limit_is_kept_in_quarantine(services, app):
    app.config["EMAIL_MAX_BYTES"] = 2000
    result = receive(raw_email(body="x" * 5000))
    assert result.status == "quarantined" and "over the limit" in result.reason
    assert db.session.get(InboundEmail, result.inbound_id).size > 5000


def test_a_processing_failure_is_quarantined_then_reprocessed_after_the_fix(services, app):
    app.config["EMAIL_MAX_BYTES"] = 100
    result = receive(raw_email(subject="Pothole"))
    assert result.status == "quarantined"
    inbound = db.session.get(InboundEmail, result.inbound_id)
    app.config["EMAIL_MAX_BYTES"] = 10_000_000
    again = channel.reprocess(inbound)
    assert again.status == "ingested" and again.case_reference
    assert db.session.get(InboundEmail, result.inbound_id).attempts == 2


def test_an_unexpected_error_quarantines_with_its_reason_and_leaves_no_half_made_records(services, app, monkeypatch):
    def broken_route(parsed, recipients):
        raise RuntimeError("routing table missing")

    monkeypatch.setattr(ingest_pipeline, "route_email", broken_route)
    result = receive(raw_email(subject="Pothole"))
    assert result.status == "quarantined" and "routing table missing" in result.reason
    assert count(Conversation) == 0 and count(Contact) == 0  # the savepoint rolled back
    monkeypatch.undo()
    assert channel.reprocess(db.session.get(InboundEmail, result.inbound_id)).status == "ingested"


def test_a_huge_body_is_stored_in_full_and_shortened_for_display(services):
    body = "A long letter. " * 20000  # 300,000 characters
    result = receive(raw_email(body=body))
    message = db.session.scalar(select(Message).where(Message.author == "resident"))
    assert result.status == "ingested" and len(message.body) < len(body)
    assert "the full message is kept" in message.body
    assert len(db.session.get(InboundEmail, result.inbound_id).full_text) >= len(body.strip())
