"""Outbound email: notifications, agent replies and the sending job, against a real SMTP sink."""
from sqlalchemy import select

from crm.channels import email as channel
from crm.extensions import db
from crm.models import Conversation, CustomerIdentity, OutboundEmail
from tests import factories
from tests.support import free_port


def test_send_to_customer_delivers_plain_and_html_with_case_reference(smtp_sink, services):
    customer = factories.customer("Jane Resident", email="jane@example.org")
    case = factories.case(customer, title="Pothole on Main Street")
    message = channel.send_to_customer(customer, "Your case has been updated", "We fixed it.\n\nThanks.", case=case)
    db.session.commit()
    assert message is not None and message.author == "system"
    assert len(smtp_sink.messages) == 1
    sent = smtp_sink.messages[0]
    mime = sent["message"]
    assert sent["rcpt_tos"] == ["jane@example.org"]
    assert sent["mail_from"] == "contact@council.example"
    assert case.reference in mime["Subject"]
    assert mime["Message-ID"].strip("<>").endswith("@council.example")
    assert mime["Auto-Submitted"] == "auto-generated"
    assert mime.get_body(("plain",)).get_content().strip().startswith("We fixed it.")
    assert "<p>We fixed it.</p>" in mime.get_body(("html",)).get_content()
    send = db.session.scalar(select(OutboundEmail))
    assert send.status == "sent" and message.delivery_status == "sent"
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.case_id == case.id and conversation.channel == "email"


def test_send_to_customer_returns_none_without_a_deliverable_address(smtp_sink, services):
    no_email = factories.customer("Phone Only", phone="01228 600600")
    assert channel.send_to_customer(no_email, "Update", "Hello") is None
    bounced = factories.customer("Bounced", email="gone@example.org")
    identity = db.session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == "gone@example.org"))
    identity.undeliverable = True
    db.session.commit()
    assert channel.send_to_customer(bounced, "Update", "Hello") is None
    db.session.commit()
    assert smtp_sink.messages == []


def test_a_failed_send_is_retried_then_marked_failed_on_the_conversation(no_smtp, app, services):
    app.config["EMAIL_SEND_ATTEMPTS"] = 3
    customer = factories.customer("Jane Resident", email="jane@example.org")
    message = channel.send_to_customer(customer, "Update", "Hello")
    db.session.commit()  # the job runs at once (tests) and the relay is down
    send = db.session.scalar(select(OutboundEmail))
    assert (send.status, send.attempts) == ("retrying", 1)
    assert "Connection refused" in message.delivery_error
    assert channel.deliver(send.id) == "retrying"
    assert channel.deliver(send.id) == "failed"
    db.session.refresh(message)
    assert message.delivery_status == "failed" and "attempt 3" in message.delivery_error


def test_a_send_the_relay_refuses_for_good_fails_at_once(smtp_sink, services):
    smtp_sink.refuse.add("nobody@example.org")
    customer = factories.customer("Nobody", email="nobody@example.org")
    message = channel.send_to_customer(customer, "Update", "Hello")
    db.session.commit()
    db.session.refresh(message)
    assert message.delivery_status == "failed" and "550" in message.delivery_error


def test_a_failed_send_can_be_retried_once_the_relay_is_back(app, services, smtp_sink):
    customer = factories.customer("Jane Resident", email="jane@example.org")
    working_port = app.config["SMTP_PORT"]
    app.config.update(SMTP_PORT=free_port(), EMAIL_SEND_ATTEMPTS=1)
    message = channel.send_to_customer(customer, "Update", "Hello")
    db.session.commit()
    send = db.session.scalar(select(OutboundEmail))
    assert send.status == "failed"
    app.config["SMTP_PORT"] = working_port
    channel.retry_send(send)
    db.session.commit()
    db.session.refresh(message)
    assert message.delivery_status == "sent" and len(smtp_sink.messages) == 1


def test_a_send_is_claimed_once_so_a_duplicate_job_does_not_send_twice(smtp_sink, services):
    customer = factories.customer("Jane Resident", email="jane@example.org")
    channel.send_to_customer(customer, "Update", "Hello")
    db.session.commit()
    send = db.session.scalar(select(OutboundEmail))
    assert channel.deliver(send.id) == "sent"
    assert len(smtp_sink.messages) == 1


def test_sends_whose_job_was_lost_are_queued_again(app, smtp_sink, services):
    from datetime import timedelta

    from crm.models import utcnow

    customer = factories.customer("Jane Resident", email="jane@example.org")
    working_port = app.config["SMTP_PORT"]
    app.config.update(SMTP_PORT=free_port())
    channel.send_to_customer(customer, "Update", "Hello")
    db.session.commit()
    send = db.session.scalar(select(OutboundEmail))
    # As if the queue had been down at commit time, or a worker died mid-send, long ago.
    send.status, send.attempts = "queued", 0
    send.created_at = utcnow() - timedelta(minutes=30)
    db.session.commit()
    app.config["SMTP_PORT"] = working_port
    assert channel.requeue_stalled() == 1
    db.session.refresh(send)
    assert send.status == "sent" and len(smtp_sink.messages) == 1
    assert channel.requeue_stalled() == 0
