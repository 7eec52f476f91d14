"""Console pages of the email channel: inbox views, conversation, reply, note, assign, resolve, quarantine."""

from datetime import timedelta
from email.utils import format_datetime

from sqlalchemy import func, select

from crm.channels import email as channel
from crm.extensions import db
from crm.models import CannedReply, Contact, Conversation, Customer, InboundEmail, utcnow
from tests import factories
from tests.channels.mailbuilder import raw_email
from tests.conftest import csrf_from


def new_enquiry(**kw):
    return channel.receive(raw_email(**kw), source="file")


def test_inbox_views_show_unassigned_mine_and_waiting(agent_client, agent, services):
    unassigned = new_enquiry(subject="Unassigned pothole", to="highways@council.example")
    mine = new_enquiry(subject="My streetlight")
    waiting = new_enquiry(subject="Waiting for photos")
    db.session.get(Conversation, mine.conversation_id).assignee_id = agent.id
    db.session.get(Conversation, mine.conversation_id).status = "assigned"
    db.session.get(Conversation, waiting.conversation_id).status = "waiting_customer"
    db.session.commit()
    page = agent_client.get("/email/").get_data(as_text=True)
    assert "Unassigned pothole" in page and "My streetlight" not in page
    assert "My streetlight" in agent_client.get("/email/?view=mine").get_data(as_text=True)
    assert "Waiting for photos" in agent_client.get("/email/?view=waiting").get_data(as_text=True)
    by_queue = agent_client.get("/email/?queue=general_email").get_data(as_text=True)
    assert "Unassigned pothole" not in by_queue
    assert "Unassigned pothole" in agent_client.get("/email/?queue=highways_email").get_data(as_text=True)


def test_conversation_page_reply_note_assign_and_resolve(agent_client, agent, services, smtp_sink):
    db.session.add(CannedReply(title="Pothole timescales", body="We repair dangerous potholes within 24 hours."))
    db.session.commit()
    result = new_enquiry(subject="Pothole <script>alert(1)</script>", body="Deep hole\n\n--\nJane")
    url = f"/email/conversations/{result.conversation_id}"
    page = agent_client.get(url).get_data(as_text=True)
    assert "Deep hole" in page and "&lt;script&gt;" in page and "<script>alert" not in page
    assert "Pothole timescales" in page and "within 24 hours" in page  # canned reply offered
    assert "timeline" in page and result.case_reference in page
    token = csrf_from(page)
    response = agent_client.post(f"{url}/reply", data={"body": "We will fill it this week.", "csrf_token": token})
    assert response.status_code == 302
    assert smtp_sink.messages[-1]["message"]["In-Reply-To"]
    agent_client.post(f"{url}/note", data={"body": "Photo needed from highways", "csrf_token": token})
    sent_count = len(smtp_sink.messages)
    page = agent_client.get(url).get_data(as_text=True)
    assert "Internal note" in page and "Photo needed from highways" in page
    assert len(smtp_sink.messages) == sent_count
    agent_client.post(f"{url}/assign", data={"assignee": "", "csrf_token": token})
    assert db.session.get(Conversation, result.conversation_id).assignee_id is None
    agent_client.post(f"{url}/assign", data={"assignee": str(agent.id), "csrf_token": token})
    assert db.session.get(Conversation, result.conversation_id).assignee_id == agent.id
    response = agent_client.post(f"{url}/resolve", data={"outcome": "signposted", "csrf_token": token})
    assert response.status_code == 302
    conversation = db.session.get(Conversation, result.conversation_id)
    assert conversation.status == "resolved"
    outcomes = {c.direction: c.outcome for c in db.session.scalars(
        select(Contact).where(Contact.conversation_id == conversation.id))}
    assert outcomes["outbound"] == "signposted"


def test_posting_without_csrf_or_with_an_empty_reply_is_refused(agent_client, services, smtp_sink):
    result = new_enquiry()
    url = f"/email/conversations/{result.conversation_id}"
    assert agent_client.post(f"{url}/reply", data={"body": "hi"}).status_code == 400
    token = csrf_from(agent_client.get(url).get_data(as_text=True))
    assert agent_client.post(f"{url}/reply", data={"body": "", "csrf_token": token}).status_code == 400
    assert agent_client.get("/email/conversations/999999").status_code == 404


def test_a_failed_send_shows_on_the_conversation_with_send_again(agent_client, app, services, no_smtp):
    app.config["EMAIL_SEND_ATTEMPTS"] = 1
    result = new_enquiry()
    page = agent_client.get(f"/email/conversations/{result.conversation_id}").get_data(as_text=True)
    assert "Not delivered" in page and "Connection refused" in page and "Send again" in page


def test_quarantine_is_for_admins_and_reprocess_works(client, auth, make_user, services, app):
    app.config["EMAIL_MAX_BYTES"] = 50
    result = new_enquiry(subject="Too big for now")
    agent = make_user("agent")
    auth.login(agent)
    assert client.get("/email/quarantine").status_code == 403
    auth.logout()
    admin = make_user("admin")
    auth.login(admin)
    page = client.get("/email/quarantine").get_data(as_text=True)
    assert "Too big for now" in page and "over the limit" in page
    detail = client.get(f"/email/quarantine/{result.inbound_id}").get_data(as_text=True)
    assert "Message-ID" in detail
    raw = client.get(f"/email/quarantine/{result.inbound_id}/raw")
    assert raw.mimetype == "message/rfc822" and raw.data == db.session.get(InboundEmail, result.inbound_id).raw
    app.config["EMAIL_MAX_BYTES"] = 10_000_000
    response = client.post(f"/email/quarantine/{result.inbound_id}/reprocess", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert db.session.get(InboundEmail, result.inbound_id).status == "ingested"
    assert "Too big for now" not in client.get("/email/quarantine").get_data(as_text=True)


def test_attachments_that_are_not_images_download_instead_of_rendering(agent_client, services):
    raw = (b"From: jane@example.org\r\nTo: contact@council.example\r\nSubject: Page\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
           b"Content-Type: text/plain\r\n\r\nSee attached\r\n--b\r\nContent-Type: text/html\r\n"
           b"Content-Disposition: attachment; filename=page.html\r\n\r\n<script>alert(1)</script>\r\n--b--\r\n")
    result = channel.receive(raw, source="file")
    conversation = db.session.get(Conversation, result.conversation_id)
    attachment = conversation.messages[0].attachments[0]
    response = agent_client.get(f"/email/attachments/{attachment.id}")
    assert response.mimetype == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["Content-Security-Policy"]


def test_demo_email_data_fills_the_inbox_without_sending_anything(agent_client, smtp_sink):
    from crm import demo
    from crm.channels.email.demo import seed_email_demo

    demo.seed_services()
    for n in range(4):
        factories.customer(f"Demo Resident {n}", email=f"demo{n}@example.org")
    db.session.commit()
    seed_email_demo()
    page = agent_client.get("/email/").get_data(as_text=True)
    assert "Pothole on Lowther Street" in page and "Parish records for Ulverston" in page
    assert smtp_sink.messages == []
    assert db.session.scalar(select(func.count(Customer.id))) == 4  # the emails joined existing residents
    assert db.session.scalar(select(CannedReply).where(CannedReply.title == "Email: missed bin")) is not None


def test_mail_that_arrives_long_after_it_was_written_shows_when_it_was_written(agent_client, services):
    late = new_enquiry(subject="Imported from the old mailbox")  # dated 24 Nov 2026 10:00 UTC
    fresh = format_datetime(utcnow() - timedelta(minutes=2))
    on_time = new_enquiry(subject="Written just now", date=fresh)

    late_page = agent_client.get(f"/email/conversations/{late.conversation_id}").get_data(as_text=True)
    assert "(written <time datetime=\"2026-11-24T10:00:00" in late_page and "24 Nov 2026 10:00" in late_page
    on_time_page = agent_client.get(f"/email/conversations/{on_time.conversation_id}").get_data(as_text=True)
    assert "(written" not in on_time_page
